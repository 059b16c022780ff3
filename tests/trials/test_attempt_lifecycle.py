"""The attempt lifecycle in trials.services: start, pause, resume, notes, submit, and the server-enforced end."""

from __future__ import annotations

from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from rebench_site.errors import NotAllowed, ServiceError
from tests import factories
from trials import services
from trials.models import Attempt, Pause, Reservation

pytestmark = pytest.mark.django_db

HOURS_8 = timedelta(hours=8)


@pytest.fixture
def start() -> datetime:
    """When the reservation begins: a fixed moment in the recent past, so every `now` below is explicit."""
    return (timezone.now() - timedelta(days=1)).replace(microsecond=0)


@pytest.fixture
def reservation(expert: User, start: datetime) -> Reservation:
    """A 12-hour slot, so that the 8-hour clock (not the slot's end) decides the deadline unless a test says so."""
    return factories.ReservationFactory(
        expert=expert,
        environment=factories.environment("ai_rd_triton_cumsum"),
        starts_at=start,
        ends_at=start + timedelta(hours=12),
    )


@pytest.fixture
def attempt(reservation: Reservation, expert: User, start: datetime) -> Attempt:
    return services.attempt_start(reservation=reservation, by=expert, now=start + timedelta(minutes=1))


def fresh(attempt: Attempt) -> Attempt:
    return Attempt.objects.prefetch_related("pauses").get(pk=attempt.pk)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# --- start ---------------------------------------------------------------------------------------


def test_the_expert_starts_the_attempt_inside_the_slot(reservation: Reservation, expert: User, start: datetime) -> None:
    now = start + minutes(10)
    attempt = services.attempt_start(reservation=reservation, by=expert, now=now)
    assert attempt.status == Attempt.Status.RUNNING
    assert attempt.started_at == now
    assert attempt.user == expert
    assert attempt.time_limit == HOURS_8 == reservation.environment.time_limit
    assert attempt.hard_stop_at == reservation.ends_at
    assert attempt.workstation_id == reservation.workstation_id
    assert fresh(attempt).deadline() == now + HOURS_8


def test_an_attempt_records_its_configuration_package_version_and_scorer_at_the_start(
    reservation: Reservation, expert: User, start: datetime, settings
) -> None:
    from environments import packages

    settings.ENVIRONMENT_CONFIGURATION = "small"
    settings.ENVIRONMENT_CONFIGURATION_OVERRIDES = {}
    reservation.environment = factories.environment("ai_rd_fix_embedding")
    reservation.save()
    attempt = services.attempt_start(reservation=reservation, by=expert, now=start + minutes(1))
    package = packages.find("ai_rd_fix_embedding")

    assert attempt.configuration.name == "small"
    assert (attempt.configuration.starting_score, attempt.configuration.reference_score) == (
        package.configurations["small"].starting_score,
        package.configurations["small"].reference_score,
    )
    assert attempt.package_version == package.version == "1.0"
    assert attempt.scorer_digest == package.scorer_digest()
    # The site switching to full later changes nothing about this attempt.
    settings.ENVIRONMENT_CONFIGURATION = "full"
    assert Attempt.objects.get(pk=attempt.pk).configuration.name == "small"


def test_starting_twice_returns_the_same_attempt(reservation: Reservation, expert: User, start: datetime) -> None:
    first = services.attempt_start(reservation=reservation, by=expert, now=start + minutes(1))
    second = services.attempt_start(reservation=reservation, by=expert, now=start + minutes(30))
    assert second.pk == first.pk
    assert second.started_at == start + minutes(1)
    assert Attempt.objects.count() == 1


def test_the_attempt_cannot_start_before_the_slot(reservation: Reservation, expert: User, start: datetime) -> None:
    with pytest.raises(ServiceError) as info:
        services.attempt_start(reservation=reservation, by=expert, now=start - minutes(1))
    assert info.value.field == "reservation"
    assert not Attempt.objects.exists()


def test_the_attempt_cannot_start_once_the_slot_is_over(reservation: Reservation, expert: User) -> None:
    with pytest.raises(ServiceError):
        services.attempt_start(reservation=reservation, by=expert, now=reservation.ends_at)
    assert not Attempt.objects.exists()


def test_a_cancelled_reservation_cannot_be_started(
    reservation: Reservation, expert: User, admin_user: User, start: datetime
) -> None:
    services.reservation_cancel(reservation=reservation, by=admin_user, now=start + minutes(1))
    with pytest.raises(ServiceError):
        services.attempt_start(reservation=reservation, by=expert, now=start + minutes(2))
    assert not Attempt.objects.exists()


def test_another_expert_cannot_start_someone_elses_slot(
    reservation: Reservation, other_expert: User, start: datetime
) -> None:
    with pytest.raises(NotAllowed):
        services.attempt_start(reservation=reservation, by=other_expert, now=start + minutes(1))
    assert not Attempt.objects.exists()


def test_a_slot_shorter_than_the_time_limit_ends_at_the_slots_end(expert: User, start: datetime) -> None:
    short = factories.ReservationFactory(expert=expert, starts_at=start, ends_at=start + timedelta(hours=6))
    attempt = services.attempt_start(reservation=short, by=expert, now=start)
    assert fresh(attempt).deadline() == short.ends_at


# --- pause and resume ----------------------------------------------------------------------------


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


# --- notes, submit -------------------------------------------------------------------------------


def test_a_note_records_the_working_time_on_the_clock(attempt: Attempt, expert: User) -> None:
    t0 = attempt.started_at
    services.attempt_pause(attempt=attempt, by=expert, reason=Pause.Reason.BREAK, now=t0 + minutes(30))
    services.attempt_resume(attempt=attempt, by=expert, now=t0 + minutes(45))
    note = services.attempt_add_note(attempt=attempt, by=expert, body="  tried fp16  ", now=t0 + minutes(100))
    assert note.body == "tried fp16"
    assert note.elapsed_seconds == 85 * 60


def test_an_empty_note_and_a_note_on_someone_elses_attempt_are_refused(
    attempt: Attempt, other_expert: User, expert: User
) -> None:
    with pytest.raises(ServiceError):
        services.attempt_add_note(attempt=attempt, by=expert, body="   ")
    with pytest.raises(NotAllowed):
        services.attempt_add_note(attempt=attempt, by=other_expert, body="hello")
    assert not attempt.notes.exists()


def test_submitting_twice_is_harmless(attempt: Attempt, expert: User) -> None:
    t0 = attempt.started_at
    first = services.attempt_submit(attempt=attempt, by=expert, now=t0 + minutes(200))
    second = services.attempt_submit(attempt=attempt, by=expert, now=t0 + minutes(260))
    assert first.status == second.status == Attempt.Status.ENDED
    assert first.ended_at == second.ended_at == t0 + minutes(200)
    assert fresh(attempt).end_reason == Attempt.EndReason.SUBMITTED
    assert fresh(attempt).elapsed(t0 + minutes(1000)) == minutes(200)


def test_submitting_while_paused_closes_the_pause_at_the_end(attempt: Attempt, expert: User) -> None:
    t0 = attempt.started_at
    services.attempt_pause(attempt=attempt, by=expert, reason=Pause.Reason.BREAK, now=t0 + minutes(30))
    services.attempt_submit(attempt=attempt, by=expert, now=t0 + minutes(50))
    ended = fresh(attempt)
    assert ended.open_pause() is None
    assert ended.pauses.get().ended_at == t0 + minutes(50)
    assert ended.elapsed(t0 + minutes(999)) == minutes(30)


def test_another_expert_cannot_submit_someone_elses_attempt(attempt: Attempt, other_expert: User) -> None:
    with pytest.raises(NotAllowed):
        services.attempt_submit(attempt=attempt, by=other_expert, now=attempt.started_at + minutes(5))
    assert fresh(attempt).status == Attempt.Status.RUNNING


def test_an_ended_attempt_cannot_be_paused_resumed_or_noted(attempt: Attempt, expert: User) -> None:
    t0 = attempt.started_at
    services.attempt_pause(attempt=attempt, by=expert, reason=Pause.Reason.BREAK, now=t0 + minutes(10))
    services.attempt_submit(attempt=attempt, by=expert, now=t0 + minutes(20))
    with pytest.raises(ServiceError):
        services.attempt_resume(attempt=attempt, by=expert, now=t0 + minutes(30))
    with pytest.raises(ServiceError):
        services.attempt_pause(attempt=attempt, by=expert, reason=Pause.Reason.BREAK, now=t0 + minutes(30))
    with pytest.raises(ServiceError):
        services.attempt_add_note(attempt=attempt, by=expert, body="too late", now=t0 + minutes(30))
    assert fresh(attempt).pauses.count() == 1
    assert not attempt.notes.exists()


def test_an_admin_ends_an_attempt_and_an_expert_cannot(attempt: Attempt, expert: User, admin_user: User) -> None:
    t0 = attempt.started_at
    with pytest.raises(NotAllowed):
        services.attempt_end_by_admin(attempt=attempt, by=expert, now=t0 + minutes(5))
    ended = services.attempt_end_by_admin(attempt=attempt, by=admin_user, now=t0 + minutes(6))
    assert ended.end_reason == Attempt.EndReason.ADMIN
    assert ended.ended_at == t0 + minutes(6)


# --- the server ends attempts ----------------------------------------------------------------------


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
        reservation = factories.ReservationFactory(
            expert=user,
            workstation=factories.WorkstationFactory(name=name),
            environment=factories.environment("ai_rd_triton_cumsum"),
            starts_at=started_at,
            ends_at=started_at + timedelta(hours=hours),
        )
        return services.attempt_start(reservation=reservation, by=user, now=started_at)

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
    attempt = factories.AttemptFactory(reservation__expert=expert)
    with (
        mock.patch("trials.tasks.attempt_enforce_deadline.apply_async") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.attempt_enforce_deadline(attempt_id=attempt.pk, now=attempt.started_at + timedelta(hours=1))
    queued.assert_called_once()
    assert queued.call_args.kwargs["eta"] == attempt.started_at + attempt.time_limit


def test_pausing_schedules_a_check_for_the_slots_hard_stop(django_capture_on_commit_callbacks, expert) -> None:
    attempt = factories.AttemptFactory(reservation__expert=expert)
    with (
        mock.patch("trials.tasks.attempt_enforce_deadline.apply_async") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.attempt_pause(attempt=attempt, by=expert, reason="break")
    queued.assert_called_once()
    assert queued.call_args.kwargs["eta"] == attempt.hard_stop_at


# --- the slot after the end ----------------------------------------------------------------------


def test_an_early_end_gives_the_rest_of_the_slot_back_after_the_margin(
    reservation: Reservation, attempt: Attempt, expert: User, settings
) -> None:
    settings.RESERVATION_RELEASE_MARGIN = minutes(30)
    done = attempt.started_at + minutes(60)
    services.attempt_submit(attempt=attempt, by=expert, now=done)

    reservation.refresh_from_db()
    assert reservation.ends_at == done + minutes(30)  # was start + 12 h
    # Another expert books the workstation for right after the margin, inside the old slot.
    workstation = reservation.workstation
    workstation.last_heartbeat_at = done + minutes(30)
    workstation.save()
    other = factories.expert()
    booked = services.reservation_create(
        expert=other,
        environment=reservation.environment,
        workstation=workstation,
        starts_at=done + minutes(30),
        created_by=other,
        now=done + minutes(30),
    )
    assert booked.starts_at < attempt.started_at + timedelta(hours=12)


def test_an_end_closer_to_the_slots_end_than_the_margin_leaves_the_slot_as_it_was(
    reservation: Reservation, attempt: Attempt, expert: User, start: datetime, settings
) -> None:
    settings.RESERVATION_RELEASE_MARGIN = timedelta(hours=5)
    services.attempt_submit(attempt=attempt, by=expert, now=start + timedelta(hours=7, minutes=30))
    reservation.refresh_from_db()
    assert reservation.ends_at == start + timedelta(hours=12)
