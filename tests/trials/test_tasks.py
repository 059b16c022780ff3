"""The Celery tasks of trials: what each one does, where its messages go, and the sweep through a real worker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, signals
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from rebench_site.celery import app as project_app
from tests import factories
from tests.trials.celery_support import BROKERS, broker_url, queue_length, running_worker, using_broker, wait_for
from trials import services, tasks
from trials.models import Attempt, Workstation
from workstation.agent.tasks import workstation_heartbeat


@pytest.fixture(params=BROKERS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Celery]:
    with using_broker(broker_url(request.param, tmp_path)) as app:
        yield app


def attempt_started(user: User, started_at: datetime, name: str) -> Attempt:
    """An attempt started at `started_at` (in the past) in a 12-hour slot beginning then, its environment
    ready (its clock started) at once."""
    reservation = factories.ReservationFactory.create(
        expert=user,
        workstation=factories.WorkstationFactory.create(name=name),
        environment=factories.environment("ai_rd_triton_cumsum"),
        starts_at=started_at,
        ends_at=started_at + timedelta(hours=12),
    )
    attempt = services.attempt_start(reservation=reservation, by=user, now=started_at)
    services.attempt_clock_start(attempt_id=attempt.pk, now=started_at)
    return attempt


def lost_attempt(user: User, started_at: datetime, name: str) -> Attempt:
    """Like attempt_started, but written past the service: no deadline task was ever queued for it."""
    return factories.AttemptFactory.create(
        reservation=factories.ReservationFactory.create(
            expert=user,
            workstation=factories.WorkstationFactory.create(name=name),
            environment=factories.environment("ai_rd_triton_cumsum"),
            starts_at=started_at,
            ends_at=started_at + timedelta(hours=12),
        ),
        started_at=started_at,
    )


def test_every_task_in_the_beat_schedule_is_registered() -> None:
    project_app.loader.import_default_modules()
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert names >= {"trials.tasks.attempts_sweep_deadlines", "trials.tasks.workstations_ping"}
    assert names <= set(project_app.tasks)


def test_deadline_tasks_are_late_acknowledged() -> None:
    # A worker that dies mid-task leaves the message on the broker for the next one.
    assert tasks.attempt_enforce_deadline.acks_late
    assert tasks.attempts_sweep_deadlines.acks_late


@pytest.mark.django_db
def test_the_deadline_task_reports_missing_running_and_ended(expert: User, other_expert: User) -> None:
    now = timezone.now()
    overdue = attempt_started(expert, now - timedelta(hours=9), "ws-overdue")
    fresh = attempt_started(other_expert, now - timedelta(hours=1), "ws-fresh")

    assert tasks.attempt_enforce_deadline(987654) == "missing"
    assert tasks.attempt_enforce_deadline(fresh.pk) == Attempt.Status.RUNNING
    assert tasks.attempt_enforce_deadline(overdue.pk) == Attempt.Status.ENDED
    assert tasks.attempt_enforce_deadline(overdue.pk) == Attempt.Status.ENDED
    overdue.refresh_from_db()
    assert overdue.ended_at == overdue.started_at + overdue.time_limit


@pytest.mark.django_db
def test_the_heartbeat_task_stamps_the_workstation(workstation: Workstation) -> None:
    Workstation.objects.filter(pk=workstation.pk).update(last_heartbeat_at=None)
    assert workstation_heartbeat(workstation.pk) is True
    workstation.refresh_from_db()
    assert workstation.last_heartbeat_at is not None
    assert timezone.now() - workstation.last_heartbeat_at < timedelta(seconds=10)
    assert workstation_heartbeat(987654) is False


def test_the_heartbeat_says_whether_the_workstation_can_sandbox(workstation: Workstation, settings) -> None:
    from workstation import capabilities

    settings.SANDBOX_BWRAP = "/nonexistent/bwrap"
    capabilities.local_report(fresh=True)
    try:
        assert workstation_heartbeat(workstation.pk) is True
        workstation.refresh_from_db()
        assert any("bubblewrap is not installed" in p for p in workstation.sandbox_problems)
        assert workstation.sandbox_checked_at is not None
        assert not workstation.is_bookable()
    finally:
        settings.SANDBOX_BWRAP = "bwrap"
        capabilities.local_report(fresh=True)


@pytest.mark.django_db(transaction=True)
def test_the_ping_sends_one_heartbeat_to_each_workstations_own_queue(app: Celery) -> None:
    first = factories.WorkstationFactory.create(name="first")
    second = factories.WorkstationFactory.create(name="second")
    draining = factories.WorkstationFactory.create(name="draining", status=Workstation.Status.DRAINING)
    retired = factories.WorkstationFactory.create(name="retired", status=Workstation.Status.OFFLINE)

    # Drained workstations still run attempts, so they are pinged; ones taken offline are not.
    assert tasks.workstations_ping() == 3

    for ws in (first, second, draining):
        assert queue_length(app, ws.queue_name) == 1
    assert queue_length(app, retired.queue_name) == 0
    assert queue_length(app, settings.CELERY_TASK_DEFAULT_QUEUE) == 0


@pytest.mark.timeout(120)
@pytest.mark.django_db(transaction=True)
def test_the_sweep_run_by_a_real_worker_ends_the_overdue_attempts(
    app: Celery, expert: User, other_expert: User
) -> None:
    now = timezone.now()
    # Rows written directly, so that no deadline task is queued for them: the sweep is the safety
    # net for deadline tasks that were lost (attempt_start's own task would end `overdue` first).
    overdue = lost_attempt(expert, now - timedelta(hours=9), "ws-overdue")
    running = lost_attempt(other_expert, now - timedelta(hours=1), "ws-running")
    returned: list[Any] = []
    lock = threading.Lock()

    def record(sender: Any = None, retval: Any = None, **kwargs: Any) -> None:
        if getattr(sender, "name", None) == tasks.attempts_sweep_deadlines.name:
            with lock:
                returned.append(retval)

    signals.task_postrun.connect(record, weak=False)
    try:
        with running_worker(app, queues=[settings.CELERY_TASK_DEFAULT_QUEUE]):
            tasks.attempts_sweep_deadlines.delay()
            assert wait_for(lambda: bool(returned), timeout=30)
    finally:
        signals.task_postrun.disconnect(record)

    assert returned == [[overdue.pk]]
    overdue.refresh_from_db()
    running.refresh_from_db()
    assert overdue.status == Attempt.Status.ENDED
    assert overdue.end_reason == Attempt.EndReason.DEADLINE
    assert overdue.ended_at == overdue.started_at + overdue.time_limit
    assert running.status == Attempt.Status.RUNNING
