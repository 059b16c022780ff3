"""Preparing the environment comes before the clock: an attempt counts from the moment its starting
solution is scored, a failed preparation costs nothing, and pauses and the slot's hard stop hold as before."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from graders import services as grading_services
from graders.models import ScoringJob
from rebench_site.errors import ServiceError
from tests import factories
from tests.trials.attempt_lifecycle_support import HOURS_8, fresh, minutes, reservation, start
from trials import selectors, services
from trials.models import Attempt, Pause, Reservation
from workstation import scoring
from workstation.sandbox import lifecycle

pytestmark = pytest.mark.django_db

__all__ = ["reservation", "start"]  # the support module's fixtures, registered by import


@pytest.fixture
def t0(start: datetime) -> datetime:
    """When the expert pressed Start: a minute into the 12-hour slot."""
    return start + minutes(1)


@pytest.fixture
def preparing(reservation: Reservation, expert: User, t0: datetime) -> Attempt:
    return services.attempt_start(reservation=reservation, by=expert, now=t0)


@pytest.fixture
def preparing_now(expert: User) -> Attempt:
    """Started just now in a slot open now (the pages and the API read the real clock)."""
    reservation = factories.ReservationFactory.create(expert=expert)
    return services.attempt_start(reservation=reservation, by=expert)


def score_the_start(attempt: Attempt, *, begun: datetime, scored: datetime, status: str = "done") -> ScoringJob:
    """What the workstation's worker does once the workspace is ready: score the starting solution."""
    services.attempt_workspace_mark_ready(attempt_id=attempt.pk, now=begun)
    job = grading_services.scoring_job_queue_start(attempt_id=attempt.pk, now=begun)
    assert job is not None
    assert grading_services.scoring_job_begin(job_id=str(job.pk), now=begun) is not None
    outcome = scoring.Outcome(1.0, "ok") if status == "done" else scoring.Outcome(None, "the GPU fell off the bus")
    grading_services.scoring_job_finish(job_id=str(job.pk), outcome=outcome, status=status, now=scored)
    return job


def test_the_clock_does_not_start_before_the_starting_solution_is_scored(
    preparing: Attempt, reservation: Reservation, t0: datetime
) -> None:
    for later in (minutes(30), minutes(120)):
        attempt = fresh(preparing)
        clock = selectors.attempt_clock(attempt, t0 + later)
        assert attempt.clock_started_at is None
        assert attempt.elapsed(t0 + later) == minutes(0)
        assert clock.remaining_seconds == HOURS_8.total_seconds()  # the whole time limit, however long it takes
        assert attempt.deadline() == reservation.ends_at  # only the slot's end: the clock's deadline isn't set
        assert clock.preparing
        assert clock.page_state == "preparing"
    # Nine hours after Start, with three hours of the slot left, an attempt counted from Start would be over.
    assert services.attempts_end_overdue(now=t0 + minutes(9 * 60)) == []
    assert fresh(preparing).is_running

    services.attempt_workspace_mark_ready(attempt_id=preparing.pk, now=t0 + minutes(40))
    assert fresh(preparing).elapsed(t0 + minutes(45)) == minutes(0), "a ready workspace isn't enough"

    scored = t0 + minutes(50)
    score_the_start(preparing, begun=t0 + minutes(41), scored=scored)
    attempt = fresh(preparing)
    assert attempt.clock_started_at == scored  # the scoring moment, not Start and not the job's pick-up
    assert attempt.elapsed(scored + minutes(10)) == minutes(10)
    assert attempt.deadline() == scored + HOURS_8
    assert not attempt.pauses.exists(), "the starting score is taken off the clock, not under a scoring pause"
    assert attempt.score_log.get().elapsed_seconds == 0


def test_a_failed_preparation_leaves_the_full_time_and_a_retry_starts_the_clock_once_ready(
    preparing: Attempt, expert: User, t0: datetime
) -> None:
    score_the_start(preparing, begun=t0 + minutes(2), scored=t0 + minutes(5), status="failed")
    failed = fresh(preparing)
    assert failed.clock_started_at is None
    assert "the GPU fell off the bus" in failed.preparation_error
    assert selectors.attempt_preparing(failed) == "failed"
    three_hours_on = t0 + minutes(180)
    assert failed.elapsed(three_hours_on) == minutes(0)
    assert selectors.attempt_clock(failed, three_hours_on).remaining_seconds == HOURS_8.total_seconds()

    services.attempt_preparation_retry(attempt=failed, by=expert, now=three_hours_on)
    retried = fresh(preparing)
    assert (retried.preparation_error, retried.preparation_failed_at) == ("", None)
    assert selectors.attempt_preparing(retried) == "scoring"  # the workspace was ready; the start is scored again
    event = AuditEvent.objects.get(action="attempt.preparation_retry")
    assert "the GPU fell off the bus" in str(event.before)
    with pytest.raises(ServiceError, match="retry only if that fails"):
        services.attempt_preparation_retry(attempt=retried, by=expert, now=three_hours_on)

    job = grading_services.scoring_job_queue_start(attempt_id=preparing.pk)
    assert job is not None
    grading_services.scoring_job_begin(job_id=str(job.pk), now=three_hours_on + minutes(1))
    grading_services.scoring_job_finish(
        job_id=str(job.pk), outcome=scoring.Outcome(1.0, "ok"), now=three_hours_on + minutes(10)
    )
    started = fresh(preparing)
    assert started.clock_started_at == three_hours_on + minutes(10)
    assert started.deadline() == three_hours_on + minutes(10) + HOURS_8  # all 8 hours, 3 h 10 min after Start
    with pytest.raises(ServiceError, match="the clock has started"):
        services.attempt_preparation_retry(attempt=started, by=expert, now=three_hours_on + minutes(11))


def test_preparation_that_eats_into_the_slot_leaves_only_what_the_slot_has_left(
    preparing: Attempt, reservation: Reservation, start: datetime
) -> None:
    services.attempt_clock_start(attempt_id=preparing.pk, now=start + minutes(6 * 60))
    attempt = fresh(preparing)
    assert attempt.deadline() == reservation.ends_at == start + minutes(12 * 60)
    clock = selectors.attempt_clock(attempt, start + minutes(6 * 60))
    assert clock.remaining_seconds == minutes(6 * 60).total_seconds()
    assert services.attempts_end_overdue(now=reservation.ends_at) == [attempt.pk]
    ended = fresh(preparing)
    assert (ended.end_reason, ended.ended_at) == (Attempt.EndReason.RESERVATION_END, reservation.ends_at)
    assert ended.elapsed(reservation.ends_at) == minutes(6 * 60)


def test_an_attempt_still_preparing_at_the_slots_end_ends_there_having_counted_nothing(
    preparing: Attempt, reservation: Reservation
) -> None:
    assert services.attempts_end_overdue(now=reservation.ends_at + minutes(1)) == [preparing.pk]
    ended = fresh(preparing)
    assert (ended.end_reason, ended.ended_at) == (Attempt.EndReason.RESERVATION_END, reservation.ends_at)
    assert ended.elapsed(reservation.ends_at) == minutes(0)
    assert services.attempt_clock_start(attempt_id=preparing.pk) is False, "an ended attempt's clock never starts"


def test_pauses_wait_for_the_clock_then_work_as_before(
    preparing: Attempt, expert: User, admin_user: User, t0: datetime
) -> None:
    with pytest.raises(ServiceError, match="clock hasn't started"):
        services.attempt_pause(attempt=preparing, by=expert, reason=Pause.Reason.BREAK, now=t0 + minutes(5))
    with pytest.raises(ServiceError, match="clock hasn't started"):
        services.attempt_add_pause(
            attempt=preparing, by=admin_user, started_at=t0 + minutes(1), ended_at=t0 + minutes(2), now=t0 + minutes(5)
        )
    assert not preparing.pauses.exists()

    clock_start = t0 + minutes(20)
    services.attempt_clock_start(attempt_id=preparing.pk, now=clock_start)
    services.attempt_pause(attempt=preparing, by=expert, reason=Pause.Reason.BREAK, now=clock_start + minutes(60))
    services.attempt_resume(attempt=preparing, by=expert, now=clock_start + minutes(90))
    attempt = fresh(preparing)
    assert attempt.elapsed(clock_start + minutes(120)) == minutes(90)
    assert attempt.deadline() == clock_start + HOURS_8 + minutes(30)
    # Time given back after the fact lies in the counted time, not in the preparation before it.
    with pytest.raises(ServiceError, match="before the attempt's clock did"):
        services.attempt_add_pause(
            attempt=attempt,
            by=admin_user,
            started_at=clock_start - minutes(10),
            ended_at=clock_start + minutes(5),
            now=clock_start + minutes(120),
        )


def test_notes_and_submitting_are_open_while_preparing(preparing: Attempt, expert: User, t0: datetime) -> None:
    note = services.attempt_add_note(attempt=preparing, by=expert, body="reading the instructions", now=t0)
    assert note.elapsed_seconds == 0
    ended = services.attempt_submit(attempt=preparing, by=expert, now=t0 + minutes(3))
    assert ended.status == Attempt.Status.ENDED
    assert fresh(ended).elapsed(t0 + minutes(3)) == minutes(0)


def test_the_workstation_holds_the_experts_processes_while_preparing(preparing: Attempt, t0: datetime) -> None:
    control = selectors.attempt_sandbox_control(preparing.pk)
    assert control["paused"] == "preparing"
    assert lifecycle.frozen_reason(control, now=t0.timestamp()) == "preparing"
    assert selectors.attempt_frozen_reason(fresh(preparing), t0) == "preparing"
    services.attempt_clock_start(attempt_id=preparing.pk, now=t0 + minutes(5))
    control = selectors.attempt_sandbox_control(preparing.pk)
    assert control["paused"] is None
    assert lifecycle.frozen_reason(control, now=(t0 + minutes(6)).timestamp()) is None


def test_the_page_shows_preparing_with_its_steps_then_the_failure_and_a_retry(
    preparing_now: Attempt, expert: User
) -> None:
    client = Client()
    client.force_login(expert)
    url = reverse("trials:attempt", args=[preparing_now.pk])
    page = client.get(url).content.decode()
    assert "Preparing the environment…" in page
    assert 'data-step="workspace" class="doing"' in page
    assert 'data-state="preparing"' in page
    clock = client.get(reverse("trials:attempt-clock", args=[preparing_now.pk])).json()
    assert clock["state"] == "preparing"
    assert clock["clock_started_at"] is None
    assert clock["elapsed_seconds"] == 0
    before = clock["version"]

    services.attempt_preparation_fail(attempt_id=preparing_now.pk, reason="start.py: CUDA out of memory")
    clock = client.get(reverse("trials:attempt-clock", args=[preparing_now.pk])).json()
    assert clock["version"] != before, "the page fetches its live parts when preparation fails"
    live = client.get(reverse("trials:attempt-live", args=[preparing_now.pk])).content.decode()
    assert "Preparing the environment failed" in live
    assert "start.py: CUDA out of memory" in live
    assert "none of your time has been used, and all 8:00 of it starts once the environment is ready" in live
    assert 'id="preparation-retry-button"' in live


def test_the_api_shows_preparing_and_when_the_clock_started(preparing_now: Attempt, expert: User, api) -> None:
    body = api(expert).get(f"/api/attempts/{preparing_now.pk}/").json()
    assert body["preparing"] == "workspace"
    assert body["clock_started_at"] is None
    assert body["state"] == "running"  # the attempt runs; its clock hasn't started
    assert body["elapsed_seconds"] == 0
    assert body["remaining_seconds"] == HOURS_8.total_seconds()  # however long it takes

    services.attempt_preparation_fail(attempt_id=preparing_now.pk, reason="no space left on device")
    body = api(expert).get(f"/api/attempts/{preparing_now.pk}/").json()
    assert (body["preparing"], body["preparation_error"]) == ("failed", "no space left on device")


def test_the_expert_and_an_admin_may_prepare_again_and_nobody_else(
    preparing_now: Attempt, expert: User, other_expert: User, admin_user: User, reviewer: User, api
) -> None:
    url = reverse("trials:attempt-preparation-retry", args=[preparing_now.pk])
    api_url = f"/api/attempts/{preparing_now.pk}/prepare-again/"

    def fail() -> None:
        services.attempt_preparation_fail(attempt_id=preparing_now.pk, reason="broken")

    def client_of(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    fail()
    assert client_of(other_expert).post(url).status_code == 404
    assert api(other_expert).post(api_url).status_code == 404
    assert client_of(reviewer).post(url).status_code == 403
    assert Client().post(url).status_code == 302  # to the login page
    assert api(None).post(api_url).status_code in (401, 403)
    assert fresh(preparing_now).preparation_error == "broken", "nobody else retried it"

    assert client_of(expert).post(url).status_code == 302
    assert fresh(preparing_now).preparation_error == ""
    fail()
    response = api(admin_user).post(api_url)
    assert response.status_code == 200, response.json()
    assert response.json()["preparing"] == "workspace"
    fail()
    assert api(expert).post(api_url).status_code == 200
    assert api(expert).post(api_url).status_code == 400, "not failed: a preparation under way isn't run twice"
