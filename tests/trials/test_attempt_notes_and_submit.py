"""Notes, submitting, and an admin's end of an attempt in trials.services."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from rebench_site.errors import NotAllowed, ServiceError
from tests.trials.attempt_lifecycle_support import attempt, fresh, minutes, reservation, start
from trials import services
from trials.models import Attempt, Pause

pytestmark = pytest.mark.django_db

__all__ = ["attempt", "reservation", "start"]  # the support module\'s fixtures, registered by import


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
