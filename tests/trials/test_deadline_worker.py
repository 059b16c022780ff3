"""The server ends attempts at their deadline through a real Celery worker, on Redis and on the embedded broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, signals
from django.utils import timezone

from environments.models import Environment
from tests import factories
from tests.trials.celery_support import BROKERS, broker_url, running_worker, using_broker, wait_for
from trials import services
from trials.models import Attempt, Reservation
from trials.tasks import attempt_enforce_deadline

# The worker thread has its own database connection: it only sees committed rows.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

# Each test acts on the attempt before its deadline (checks it is running; pauses it): on a loaded
# machine starting an attempt, its clock and a pause took over 3 s in a CI run, and the deadline
# ended it first. The limits leave room for that.
TIME_LIMIT = timedelta(seconds=5)
PAUSE_TIME_LIMIT = timedelta(seconds=8)


@pytest.fixture(params=BROKERS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Celery]:
    with using_broker(broker_url(request.param, tmp_path)) as app:
        yield app


class DeadlineTaskResults:
    """What each attempt_enforce_deadline run in the worker returned, in order."""

    def __init__(self) -> None:
        self.results: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, sender: Any = None, retval: Any = None, **kwargs: Any) -> None:
        if getattr(sender, "name", None) == attempt_enforce_deadline.name:
            with self._lock:
                self.results.append(retval)


@pytest.fixture
def deadline_results() -> Iterator[DeadlineTaskResults]:
    results = DeadlineTaskResults()
    signals.task_postrun.connect(results, weak=False)
    yield results
    signals.task_postrun.disconnect(results)


def quick_reservation(time_limit: timedelta) -> Reservation:
    """An open slot for an environment whose time limit is `time_limit` instead of 8 hours."""
    environment = factories.environment("ai_rd_triton_cumsum")
    Environment.objects.filter(pk=environment.pk).update(time_limit=time_limit)
    environment.refresh_from_db()
    now = timezone.now()
    return factories.ReservationFactory.create(
        expert=factories.expert(username="ada"),
        environment=environment,
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
    )


def status_of(attempt: Attempt) -> str:
    return Attempt.objects.values_list("status", flat=True).get(pk=attempt.pk)


def test_a_real_worker_ends_the_attempt_at_its_deadline(app: Celery, deadline_results: DeadlineTaskResults) -> None:
    reservation = quick_reservation(TIME_LIMIT)
    with running_worker(app, queues=["celery"]):
        attempt = services.attempt_start(reservation=reservation, by=reservation.expert)
        # Its environment ready at once: starting the clock queues the deadline task for its deadline.
        services.attempt_clock_start(attempt_id=attempt.pk, now=attempt.started_at)
        deadline = attempt.started_at + TIME_LIMIT
        assert status_of(attempt) == Attempt.Status.RUNNING
        assert wait_for(lambda: status_of(attempt) == Attempt.Status.ENDED, timeout=20)
        seen_ended_at = timezone.now()

    attempt.refresh_from_db()
    assert attempt.end_reason == Attempt.EndReason.DEADLINE
    assert attempt.ended_at == deadline
    assert seen_ended_at >= deadline  # ended by a task that waited for its eta, not early
    assert deadline_results.results == [Attempt.Status.ENDED]


def test_a_pause_makes_the_first_deadline_task_a_no_op_and_the_rescheduled_one_ends_the_attempt(
    app: Celery, deadline_results: DeadlineTaskResults
) -> None:
    reservation = quick_reservation(PAUSE_TIME_LIMIT)
    expert = reservation.expert
    with running_worker(app, queues=["celery"]):
        attempt = services.attempt_start(reservation=reservation, by=expert)
        services.attempt_clock_start(attempt_id=attempt.pk, now=attempt.started_at)
        first_deadline = attempt.started_at + PAUSE_TIME_LIMIT
        services.attempt_pause(attempt=attempt, by=expert, reason="break")
        time.sleep(1.5)
        services.attempt_resume(attempt=attempt, by=expert)
        attempt = Attempt.objects.prefetch_related("pauses").get(pk=attempt.pk)
        new_deadline = attempt.deadline()
        assert new_deadline is not None
        assert new_deadline >= first_deadline + timedelta(seconds=1.5)

        # The task queued at start fires at the first deadline and finds time left on the clock.
        assert wait_for(lambda: len(deadline_results.results) >= 1, timeout=20)
        assert deadline_results.results[0] == Attempt.Status.RUNNING
        assert timezone.now() < new_deadline
        assert status_of(attempt) == Attempt.Status.RUNNING

        assert wait_for(lambda: status_of(attempt) == Attempt.Status.ENDED, timeout=20)

    attempt.refresh_from_db()
    assert attempt.end_reason == Attempt.EndReason.DEADLINE
    assert attempt.ended_at == new_deadline
    # The early task also re-queued a check for the new deadline; whichever of the two runs second
    # finds the attempt already ended, so every result after the first says "ended".
    assert deadline_results.results[0] == Attempt.Status.RUNNING
    assert len(deadline_results.results) >= 2
    assert set(deadline_results.results[1:]) == {Attempt.Status.ENDED}


def test_an_attempt_still_preparing_is_ended_by_the_worker_at_its_slots_end(
    app: Celery, deadline_results: DeadlineTaskResults
) -> None:
    with running_worker(app, queues=["celery"]):
        # The slot's end counts from here, once the worker is up: on a loaded machine the worker
        # took over 3 s to start, and the slot was over before the attempt could start.
        now = timezone.now()
        reservation = factories.ReservationFactory.create(
            expert=factories.expert(username="ada"),
            environment=factories.environment("ai_rd_triton_cumsum"),
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(seconds=6),
        )
        # Its environment never gets ready (no worker on the workstation's queue prepares it).
        attempt = services.attempt_start(reservation=reservation, by=reservation.expert)
        assert wait_for(lambda: status_of(attempt) == Attempt.Status.ENDED, timeout=30)

    attempt = Attempt.objects.prefetch_related("pauses").get(pk=attempt.pk)
    assert attempt.end_reason == Attempt.EndReason.RESERVATION_END
    assert attempt.ended_at == reservation.ends_at
    assert attempt.clock_started_at is None
    assert attempt.elapsed() == timedelta(0)
    assert deadline_results.results == [Attempt.Status.ENDED]
