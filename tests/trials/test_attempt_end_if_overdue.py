"""Ending an attempt at its deadline from the request that finds it overdue, with no Celery worker running."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, connections
from django.utils import timezone

from graders import services as grading
from graders.models import ScoringJob
from rebench_site.errors import ServiceError
from tests import factories
from trials import services
from trials.models import Attempt, Note, Pause, TerminalSession
from trials.services import deadlines
from workstation.scoring import Outcome

HOURS_8 = timedelta(hours=8)
ON_SQLITE = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
ON_EITHER_DATABASE = pytest.mark.parametrize(
    "vendor",
    [
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("sqlite", marks=pytest.mark.skipif(not ON_SQLITE, reason="runs on SQLite only")),
    ],
)


@pytest.fixture
def start() -> datetime:
    """When the attempt started: a fixed moment a day ago, so every `now` below is explicit."""
    return (timezone.now() - timedelta(days=1)).replace(microsecond=0)


def started_attempt(expert: User, start: datetime, *, slot: timedelta = timedelta(hours=12)) -> Attempt:
    reservation = factories.ReservationFactory.create(
        expert=expert,
        environment=factories.environment("ai_rd_triton_cumsum"),
        starts_at=start,
        ends_at=start + slot,
    )
    return factories.AttemptFactory.create(reservation=reservation, started_at=start)


@pytest.fixture
def attempt(db, expert: User, start: datetime) -> Attempt:
    return started_attempt(expert, start)


@pytest.fixture
def ends(monkeypatch) -> list[int]:
    """The attempts whose end was committed, once per end: each end queues one final scoring after commit."""
    ended: list[int] = []
    # Replaced in the module whose _end calls it: the package only re-exports public names.
    monkeypatch.setattr(deadlines, "_queue_final_scoring", lambda attempt: ended.append(attempt.pk))
    return ended


def fresh(attempt: Attempt) -> Attempt:
    return Attempt.objects.prefetch_related("pauses").get(pk=attempt.pk)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# --- the service ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_overdue_attempt_ends_at_its_deadline_and_ending_it_again_does_nothing(attempt: Attempt) -> None:
    deadline = attempt.started_at + HOURS_8
    assert services.attempt_end_if_overdue(attempt_id=attempt.pk, now=deadline + minutes(45)) is True
    assert services.attempt_end_if_overdue(attempt_id=attempt.pk, now=deadline + minutes(90)) is False
    ended = fresh(attempt)
    assert ended.status == Attempt.Status.ENDED
    assert ended.end_reason == Attempt.EndReason.DEADLINE
    assert ended.ended_at == deadline
    assert ended.elapsed(deadline + minutes(90)) == HOURS_8


@pytest.mark.django_db
def test_an_attempt_with_time_left_is_left_running(attempt: Attempt) -> None:
    deadline = attempt.started_at + HOURS_8
    assert services.attempt_end_if_overdue(attempt_id=attempt.pk, now=deadline - timedelta(microseconds=1)) is False
    assert fresh(attempt).status == Attempt.Status.RUNNING
    # At the deadline itself the time is up.
    assert services.attempt_end_if_overdue(attempt_id=attempt.pk, now=deadline) is True


@pytest.mark.django_db
def test_a_missing_attempt_is_not_overdue() -> None:
    assert services.attempt_end_if_overdue(attempt_id=987654) is False


@pytest.mark.django_db
def test_a_paused_attempt_is_not_ended_before_its_slots_hard_stop(attempt: Attempt, expert: User) -> None:
    t0 = attempt.started_at
    services.attempt_pause(attempt=attempt, by=expert, reason=Pause.Reason.BREAK, now=t0 + minutes(60))
    hard_stop = attempt.hard_stop_at
    assert hard_stop is not None
    # Long past when the clock would have run out, but the clock is stopped: only the slot's end stands.
    assert services.attempt_end_if_overdue(attempt_id=attempt.pk, now=hard_stop - minutes(1)) is False
    assert fresh(attempt).status == Attempt.Status.RUNNING

    assert services.attempt_end_if_overdue(attempt_id=attempt.pk, now=hard_stop + minutes(20)) is True
    ended = fresh(attempt)
    assert ended.end_reason == Attempt.EndReason.RESERVATION_END
    assert ended.ended_at == hard_stop
    assert ended.pauses.get().ended_at == hard_stop


@pytest.mark.django_db
def test_a_paused_attempt_without_a_hard_stop_is_never_overdue(attempt: Attempt, expert: User) -> None:
    Attempt.objects.filter(pk=attempt.pk).update(hard_stop_at=None)
    services.attempt_pause(attempt=attempt, by=expert, reason=Pause.Reason.BREAK, now=attempt.started_at + minutes(5))
    assert fresh(attempt).deadline() is None
    assert services.attempt_end_if_overdue(attempt_id=attempt.pk, now=attempt.started_at + timedelta(days=30)) is False
    assert fresh(attempt).status == Attempt.Status.RUNNING


@pytest.mark.django_db
def test_a_break_opened_after_the_deadline_does_not_stop_a_clock_already_at_zero(attempt: Attempt) -> None:
    deadline = attempt.started_at + HOURS_8
    Pause.objects.create(attempt=attempt, reason=Pause.Reason.BREAK, started_at=deadline + minutes(3))
    assert services.attempt_end_if_overdue(attempt_id=attempt.pk, now=deadline + minutes(10)) is True
    ended = fresh(attempt)
    assert ended.ended_at == deadline
    assert not ended.pauses.exists()


@pytest.mark.django_db
def test_a_run_entered_by_a_harness_keeps_the_harness_clock(attempt: Attempt) -> None:
    Attempt.objects.filter(pk=attempt.pk).update(source=Attempt.Source.API)
    assert services.attempt_end_if_overdue(attempt_id=attempt.pk, now=attempt.started_at + timedelta(days=2)) is False
    assert fresh(attempt).status == Attempt.Status.RUNNING


@pytest.mark.django_db
def test_ending_it_has_the_deadline_tasks_side_effects(
    attempt: Attempt, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    from trials.tasks import attempt_terminals_finish
    from workstation.agent.tasks import scoring_job_run

    scoring: list[Any] = []
    finishing: list[Any] = []
    monkeypatch.setattr(scoring_job_run, "apply_async", lambda *a, **k: scoring.append(k))
    monkeypatch.setattr(attempt_terminals_finish, "apply_async", lambda *a, **k: finishing.append(k))
    terminal = TerminalSession.objects.create(
        attempt=attempt, number=1, backend="ssh", tmux_session="t", recording_name="r"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.attempt_end_if_overdue(attempt_id=attempt.pk, now=attempt.started_at + HOURS_8 + minutes(5))
    # Final scoring queued, the terminals told why, their tmux sessions ended on the workstation.
    assert ScoringJob.objects.get(attempt=attempt).kind == ScoringJob.Kind.FINAL
    assert len(scoring) == 1
    terminal.refresh_from_db()
    assert terminal.ended_at is not None
    assert terminal.end_reason == "time limit reached"
    assert finishing == [{"args": (attempt.pk,), "queue": None}]


# --- the writes that need a running attempt ------------------------------------------------------


def late(attempt: Attempt) -> datetime:
    return attempt.started_at + HOURS_8 + minutes(30)


def assert_ended_at_its_deadline(attempt: Attempt) -> None:
    ended = fresh(attempt)
    assert ended.status == Attempt.Status.ENDED
    assert ended.end_reason == Attempt.EndReason.DEADLINE
    assert ended.ended_at == attempt.started_at + HOURS_8


def expert_of(attempt: Attempt) -> User:
    assert attempt.user is not None
    return attempt.user


WRITES: dict[str, Callable[[Attempt, User], object]] = {
    "pause": lambda a, admin: services.attempt_pause(attempt=a, by=expert_of(a), reason="break", now=late(a)),
    "resume": lambda a, admin: services.attempt_resume(attempt=a, by=expert_of(a), now=late(a)),
    "note": lambda a, admin: services.attempt_add_note(attempt=a, by=expert_of(a), body="still here", now=late(a)),
    "add pause": lambda a, admin: services.attempt_add_pause(
        attempt=a,
        by=admin,
        started_at=a.started_at + minutes(10),
        ended_at=a.started_at + minutes(20),
        now=late(a),
    ),
    "terminal": lambda a, admin: services.terminal_session_open(
        attempt_id=a.pk, number=1, user=expert_of(a), now=late(a)
    ),
    "score": lambda a, admin: grading.scoring_job_request(attempt=a, by=expert_of(a), now=late(a)),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_a_write_after_the_deadline_is_refused_and_the_end_is_kept(
    expert: User, admin_user: User, start: datetime, ends: list[int], write: Callable[[Attempt, User], object]
) -> None:
    # No test transaction around it: the end must be committed on its own, not rolled back with the write.
    attempt = started_attempt(expert, start)
    with pytest.raises(ServiceError) as info:
        write(attempt, admin_user)
    assert info.value.field == "attempt"
    assert "time limit reached" in info.value.message
    assert_ended_at_its_deadline(attempt)
    assert not Note.objects.exists()
    assert not Pause.objects.exists()
    assert not TerminalSession.objects.exists()
    assert not ScoringJob.objects.exists()
    assert ends == [attempt.pk]


@pytest.mark.django_db
def test_submitting_after_the_deadline_ends_it_at_the_deadline_not_as_submitted(attempt: Attempt) -> None:
    assert attempt.user is not None
    submitted = services.attempt_submit(attempt=attempt, by=attempt.user, now=late(attempt))
    assert submitted.end_reason == Attempt.EndReason.DEADLINE
    assert_ended_at_its_deadline(attempt)


@pytest.mark.django_db
def test_an_admin_ending_it_after_the_deadline_ends_it_at_the_deadline(attempt: Attempt, admin_user: User) -> None:
    services.attempt_end_by_admin(attempt=attempt, by=admin_user, now=late(attempt))
    assert_ended_at_its_deadline(attempt)


@pytest.mark.django_db
def test_a_break_taken_before_the_deadline_can_still_be_ended_after_it(attempt: Attempt) -> None:
    # The clock stopped with time left; the slot is still open: resuming is fair.
    t0 = attempt.started_at
    services.attempt_pause(attempt=attempt, by=attempt.user, reason="break", now=t0 + HOURS_8 - minutes(10))
    services.attempt_resume(attempt=attempt, by=attempt.user, now=t0 + HOURS_8 + minutes(60))
    resumed = fresh(attempt)
    assert resumed.status == Attempt.Status.RUNNING
    assert resumed.deadline() == t0 + HOURS_8 + minutes(70)


@pytest.mark.django_db
def test_a_scoring_run_that_outlasts_the_slots_hard_stop_is_kept_and_the_attempt_ends_there(
    expert: User, start: datetime
) -> None:
    attempt = started_attempt(expert, start, slot=timedelta(hours=8, minutes=30))
    services.attempt_pause(attempt=attempt, by=expert, reason="break", now=start + minutes(60))
    services.attempt_resume(attempt=attempt, by=expert, now=start + minutes(120))
    hard_stop = attempt.hard_stop_at
    assert hard_stop is not None
    assert fresh(attempt).deadline() == hard_stop  # the clock would run to 9 h; the slot ends first
    job = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test")
    assert grading.scoring_job_begin(job_id=str(job.pk), now=hard_stop - minutes(10)) is not None

    outcome = Outcome(score=0.7, message="ok", details={})
    entry = grading.scoring_job_finish(job_id=str(job.pk), outcome=outcome, now=hard_stop + minutes(10))
    assert entry is not None
    assert entry.score == 0.7
    # Scored at the clock's reading when scoring began: 8 h 20 min in, less the hour's break.
    assert entry.elapsed_seconds == timedelta(hours=7, minutes=20).total_seconds()
    ended = fresh(attempt)
    assert ended.end_reason == Attempt.EndReason.RESERVATION_END
    assert ended.ended_at == hard_stop
    assert [p.ended_at for p in ended.pauses.all() if p.reason == "scoring"] == [hard_stop]


# --- at once -------------------------------------------------------------------------------------


RACERS = 8


def race(action: Callable[[], object]) -> list[object]:
    """`action` in RACERS threads at once, each on its own database connection."""
    barrier = threading.Barrier(RACERS)
    outcomes: list[object] = [None] * RACERS

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            outcomes[i] = action()
        except BaseException as exc:
            outcomes[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


@ON_EITHER_DATABASE
@pytest.mark.django_db(transaction=True)
def test_requests_racing_to_end_an_overdue_attempt_end_it_once(
    vendor: str, expert: User, start: datetime, ends: list[int]
) -> None:
    assert connection.vendor == vendor
    attempt = started_attempt(expert, start)
    outcomes = race(lambda: services.attempt_end_if_overdue(attempt_id=attempt.pk, now=late(attempt)))
    assert sorted(outcomes, key=str) == [False] * (RACERS - 1) + [True]
    assert ends == [attempt.pk]
    assert_ended_at_its_deadline(attempt)


@ON_EITHER_DATABASE
@pytest.mark.django_db(transaction=True)
def test_notes_racing_past_the_deadline_are_all_refused_and_end_the_attempt_once(
    vendor: str, expert: User, start: datetime, ends: list[int]
) -> None:
    assert connection.vendor == vendor
    attempt = started_attempt(expert, start)
    outcomes = race(lambda: services.attempt_add_note(attempt=attempt, by=expert, body="mine", now=late(attempt)))
    assert all(isinstance(o, ServiceError) and o.field == "attempt" for o in outcomes), outcomes
    assert not Note.objects.exists()
    assert ends == [attempt.pk]
    assert_ended_at_its_deadline(attempt)
