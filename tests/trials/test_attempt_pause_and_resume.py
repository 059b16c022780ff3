"""Pausing and resuming an attempt in trials.services: who may stop the clock, and time given back after the fact."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from rebench_site.errors import NotAllowed, ServiceError
from tests.trials.attempt_lifecycle_support import HOURS_8, attempt, fresh, minutes, reservation, start
from trials import services
from trials.models import Attempt, Pause

pytestmark = pytest.mark.django_db

__all__ = ["attempt", "reservation", "start"]  # the support module\'s fixtures, registered by import


def test_a_break_stops_the_clock_and_resuming_starts_it_again(attempt: Attempt, expert: User) -> None:
    t0 = attempt.started_at
    pause = services.attempt_pause(attempt=attempt, by=expert, reason=Pause.Reason.BREAK, now=t0 + minutes(60))
    assert pause.ended_at is None
    assert pause.created_by == expert
    paused = fresh(attempt)
    assert paused.open_pause() is not None
    # The clock's deadline is decided when the break ends; until then only the slot's end stands.
    assert paused.deadline() == paused.hard_stop_at
    assert paused.elapsed(t0 + minutes(80)) == minutes(60)

    services.attempt_resume(attempt=attempt, by=expert, now=t0 + minutes(90))
    resumed = fresh(attempt)
    assert resumed.open_pause() is None
    assert resumed.elapsed(t0 + minutes(120)) == minutes(90)
    assert resumed.deadline() == t0 + HOURS_8 + minutes(30)


def test_pausing_a_paused_attempt_is_refused(attempt: Attempt, expert: User) -> None:
    t0 = attempt.started_at
    services.attempt_pause(attempt=attempt, by=expert, reason=Pause.Reason.BREAK, now=t0 + minutes(5))
    with pytest.raises(ServiceError):
        services.attempt_pause(attempt=attempt, by=expert, reason=Pause.Reason.BREAK, now=t0 + minutes(6))
    assert attempt.pauses.count() == 1


def test_resuming_a_running_attempt_is_refused(attempt: Attempt, expert: User) -> None:
    with pytest.raises(ServiceError):
        services.attempt_resume(attempt=attempt, by=expert, now=attempt.started_at + minutes(5))


def test_an_expert_cannot_pause_for_a_technical_problem(attempt: Attempt, expert: User) -> None:
    with pytest.raises(ServiceError) as info:
        services.attempt_pause(
            attempt=attempt, by=expert, reason=Pause.Reason.TECHNICAL, now=attempt.started_at + minutes(5)
        )
    assert info.value.field == "reason"
    assert not attempt.pauses.exists()


def test_an_expert_cannot_end_an_admins_pause(attempt: Attempt, expert: User, admin_user: User) -> None:
    t0 = attempt.started_at
    services.attempt_pause(attempt=attempt, by=admin_user, reason=Pause.Reason.TECHNICAL, now=t0 + minutes(5))
    with pytest.raises(ServiceError):
        services.attempt_resume(attempt=attempt, by=expert, now=t0 + minutes(6))
    services.attempt_resume(attempt=attempt, by=admin_user, now=t0 + minutes(20))
    assert fresh(attempt).deadline() == t0 + HOURS_8 + minutes(15)


def test_another_expert_cannot_pause_or_resume_someone_elses_attempt(
    attempt: Attempt, expert: User, other_expert: User
) -> None:
    t0 = attempt.started_at
    with pytest.raises(NotAllowed):
        services.attempt_pause(attempt=attempt, by=other_expert, reason=Pause.Reason.BREAK, now=t0 + minutes(5))
    assert not attempt.pauses.exists()
    services.attempt_pause(attempt=attempt, by=expert, reason=Pause.Reason.BREAK, now=t0 + minutes(5))
    with pytest.raises(NotAllowed):
        services.attempt_resume(attempt=attempt, by=other_expert, now=t0 + minutes(6))
    assert fresh(attempt).open_pause() is not None


def test_the_system_pauses_for_scoring_and_nobody_else_does(attempt: Attempt, expert: User) -> None:
    t0 = attempt.started_at
    with pytest.raises(ServiceError):
        services.attempt_pause(attempt=attempt, by=expert, reason=Pause.Reason.SCORING, now=t0 + minutes(5))
    services.attempt_pause(attempt=attempt, by=None, reason=Pause.Reason.SCORING, now=t0 + minutes(5))
    with pytest.raises(ServiceError):
        services.attempt_resume(attempt=attempt, by=expert, now=t0 + minutes(6))
    services.attempt_resume(attempt=attempt, by=None, now=t0 + minutes(7))
    assert fresh(attempt).deadline() == t0 + HOURS_8 + minutes(2)


def test_an_admin_gives_time_back_after_the_fact_and_the_deadline_moves_by_its_length(
    attempt: Attempt, admin_user: User
) -> None:
    t0 = attempt.started_at
    before = fresh(attempt).deadline()
    pause = services.attempt_add_pause(
        attempt=attempt,
        by=admin_user,
        started_at=t0 + minutes(60),
        ended_at=t0 + minutes(80),
        reason=Pause.Reason.TECHNICAL,
        note="workstation rebooted",
        now=t0 + minutes(120),
    )
    assert pause.reason == Pause.Reason.TECHNICAL
    assert pause.created_by == admin_user
    assert before is not None
    assert fresh(attempt).deadline() == before + minutes(20)
    assert fresh(attempt).elapsed(t0 + minutes(120)) == minutes(100)


def test_a_pause_after_the_fact_over_a_break_counts_the_overlap_once(
    attempt: Attempt, expert: User, admin_user: User
) -> None:
    t0 = attempt.started_at
    services.attempt_pause(attempt=attempt, by=expert, reason=Pause.Reason.BREAK, now=t0 + minutes(60))
    services.attempt_resume(attempt=attempt, by=expert, now=t0 + minutes(90))
    services.attempt_add_pause(
        attempt=attempt, by=admin_user, started_at=t0 + minutes(80), ended_at=t0 + minutes(100), now=t0 + minutes(120)
    )
    # Break 60–90 and outage 80–100: 40 minutes given back, not 50.
    assert fresh(attempt).deadline() == t0 + HOURS_8 + minutes(40)


def test_only_admins_add_pauses_after_the_fact(attempt: Attempt, expert: User) -> None:
    t0 = attempt.started_at
    with pytest.raises(NotAllowed):
        services.attempt_add_pause(
            attempt=attempt, by=expert, started_at=t0 + minutes(5), ended_at=t0 + minutes(10), now=t0 + minutes(20)
        )
    assert not attempt.pauses.exists()


def test_a_pause_after_the_fact_cannot_end_in_the_future_or_start_before_the_attempt(
    attempt: Attempt, admin_user: User
) -> None:
    t0 = attempt.started_at
    with pytest.raises(ServiceError) as future:
        services.attempt_add_pause(
            attempt=attempt, by=admin_user, started_at=t0 + minutes(5), ended_at=t0 + minutes(30), now=t0 + minutes(20)
        )
    assert future.value.field == "ended_at"
    with pytest.raises(ServiceError) as early:
        services.attempt_add_pause(
            attempt=attempt, by=admin_user, started_at=t0 - minutes(5), ended_at=t0 + minutes(5), now=t0 + minutes(20)
        )
    assert early.value.field == "started_at"
    assert not attempt.pauses.exists()
