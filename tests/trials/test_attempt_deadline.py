"""The server-enforced end of an attempt in trials.services: its deadline, the slot's hard stop, and the sweep."""

from __future__ import annotations

from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import User

from rebench_site.errors import ServiceError
from tests import factories
from tests.trials.attempt_lifecycle_support import HOURS_8, attempt, fresh, minutes, reservation, start
from trials import services
from trials.models import Attempt, Pause, Reservation

pytestmark = pytest.mark.django_db

__all__ = ["attempt", "reservation", "start"]  # the support module\'s fixtures, registered by import


def test_enforcing_the_deadline_ends_an_overdue_attempt_at_its_deadline_not_now(attempt: Attempt) -> None:
    deadline = attempt.started_at + HOURS_8
    late = deadline + minutes(37)
    ended = services.attempt_enforce_deadline(attempt_id=attempt.pk, now=late)
    assert ended is not None
    assert ended.status == Attempt.Status.ENDED
    assert ended.end_reason == Attempt.EndReason.DEADLINE
    assert ended.ended_at == deadline
    assert fresh(attempt).elapsed(late) == HOURS_8


def test_enforcing_the_deadline_is_idempotent(attempt: Attempt) -> None:
    deadline = attempt.started_at + HOURS_8
    services.attempt_enforce_deadline(attempt_id=attempt.pk, now=deadline)
    again = services.attempt_enforce_deadline(attempt_id=attempt.pk, now=deadline + minutes(90))
    assert again is not None
    assert again.ended_at == deadline
    assert again.end_reason == Attempt.EndReason.DEADLINE


def test_enforcing_the_deadline_early_changes_nothing(attempt: Attempt) -> None:
    deadline = attempt.started_at + HOURS_8
    result = services.attempt_enforce_deadline(attempt_id=attempt.pk, now=deadline - timedelta(microseconds=1))
    assert result is not None
    assert fresh(attempt).status == Attempt.Status.RUNNING
    assert fresh(attempt).ended_at is None


def test_enforcing_the_deadline_of_a_missing_attempt_returns_none() -> None:
    assert services.attempt_enforce_deadline(attempt_id=987654) is None


def test_enforcing_the_deadline_does_not_override_a_submission(attempt: Attempt, expert: User) -> None:
    t0 = attempt.started_at
    services.attempt_submit(attempt=attempt, by=expert, now=t0 + minutes(100))
    services.attempt_enforce_deadline(attempt_id=attempt.pk, now=t0 + HOURS_8 + minutes(1))
    assert fresh(attempt).end_reason == Attempt.EndReason.SUBMITTED
    assert fresh(attempt).ended_at == t0 + minutes(100)


def test_a_paused_attempt_past_the_slots_end_ends_there_for_reservation_end(
    attempt: Attempt, expert: User, reservation: Reservation
) -> None:
    t0 = attempt.started_at
    services.attempt_pause(attempt=attempt, by=expert, reason=Pause.Reason.BREAK, now=t0 + minutes(60))
    assert fresh(attempt).deadline() == reservation.ends_at  # the clock has no deadline; the slot does
    assert services.attempt_enforce_deadline(attempt_id=attempt.pk, now=reservation.ends_at - minutes(1))
    assert fresh(attempt).status == Attempt.Status.RUNNING

    services.attempt_enforce_deadline(attempt_id=attempt.pk, now=reservation.ends_at + minutes(3))
    ended = fresh(attempt)
    assert ended.status == Attempt.Status.ENDED
    assert ended.end_reason == Attempt.EndReason.RESERVATION_END
    assert ended.ended_at == reservation.ends_at
    assert ended.open_pause() is None
    assert ended.pauses.get().ended_at == reservation.ends_at


def test_a_pause_pressed_after_the_deadline_is_refused_and_ends_the_attempt_at_its_deadline(
    attempt: Attempt, expert: User
) -> None:
    # The deadline task is late; meanwhile the expert pressed pause on a clock already at zero.
    deadline = attempt.started_at + HOURS_8
    with pytest.raises(ServiceError) as info:
        services.attempt_pause(attempt=attempt, by=expert, reason=Pause.Reason.BREAK, now=deadline + minutes(2))
    assert info.value.field == "attempt"
    services.attempt_enforce_deadline(attempt_id=attempt.pk, now=deadline + minutes(5))  # late, and too late
    ended = fresh(attempt)
    assert ended.ended_at == deadline
    assert ended.end_reason == Attempt.EndReason.DEADLINE
    assert not ended.pauses.exists()


def test_the_sweep_ends_only_the_overdue_attempts(expert: User, other_expert: User, start: datetime) -> None:
    now = start + timedelta(hours=10)

    def attempt_for(user: User, name: str, started_at: datetime, hours: int = 12) -> Attempt:
        reservation = factories.ReservationFactory.create(
            expert=user,
            workstation=factories.WorkstationFactory.create(name=name),
            environment=factories.environment("ai_rd_triton_cumsum"),
            starts_at=started_at,
            ends_at=started_at + timedelta(hours=hours),
        )
        attempt = services.attempt_start(reservation=reservation, by=user, now=started_at)
        services.attempt_clock_start(attempt_id=attempt.pk, now=started_at)  # its environment ready at once
        return attempt

    third = factories.expert(username="third")
    fourth = factories.expert(username="fourth")
    overdue = attempt_for(expert, "ws-overdue", start)  # deadline start+8h, passed
    not_yet = attempt_for(other_expert, "ws-not-yet", now - timedelta(hours=3))  # 5 h left
    # Started long enough ago, but a 3-hour break pushed its deadline past now.
    gave_back = attempt_for(third, "ws-gave-back", start + minutes(30))
    services.attempt_pause(attempt=gave_back, by=third, reason="break", now=start + timedelta(hours=1))
    services.attempt_resume(attempt=gave_back, by=third, now=start + timedelta(hours=4))
    # On a break, but its 9-hour slot is over: the hard stop ends it.
    slot_over = attempt_for(fourth, "ws-slot-over", start, hours=9)
    services.attempt_pause(attempt=slot_over, by=fourth, reason="break", now=start + timedelta(hours=2))

    ended_ids = services.attempts_end_overdue(now=now)

    assert sorted(ended_ids) == sorted([overdue.pk, slot_over.pk])
    assert fresh(overdue).ended_at == start + HOURS_8
    assert fresh(overdue).end_reason == Attempt.EndReason.DEADLINE
    assert fresh(slot_over).ended_at == start + timedelta(hours=9)
    assert fresh(slot_over).end_reason == Attempt.EndReason.RESERVATION_END
    assert fresh(not_yet).status == Attempt.Status.RUNNING
    assert fresh(gave_back).status == Attempt.Status.RUNNING
    # A second sweep finds nothing more to do.
    assert services.attempts_end_overdue(now=now) == []


def test_a_deadline_check_that_comes_early_queues_another_for_the_real_deadline(
    django_capture_on_commit_callbacks, expert
) -> None:
    attempt = factories.AttemptFactory.create(reservation__expert=expert)
    with (
        mock.patch("trials.tasks.attempt_enforce_deadline.apply_async") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.attempt_enforce_deadline(attempt_id=attempt.pk, now=attempt.started_at + timedelta(hours=1))
    queued.assert_called_once()
    assert queued.call_args.kwargs["eta"] == attempt.started_at + attempt.time_limit


def test_pausing_schedules_a_check_for_the_slots_hard_stop(django_capture_on_commit_callbacks, expert) -> None:
    attempt = factories.AttemptFactory.create(reservation__expert=expert)
    with (
        mock.patch("trials.tasks.attempt_enforce_deadline.apply_async") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.attempt_pause(attempt=attempt, by=expert, reason="break")
    queued.assert_called_once()
    assert queued.call_args.kwargs["eta"] == attempt.hard_stop_at
