"""The server-owned clock's end: an attempt past its deadline ends there, whoever notices first.

The deadline task, the periodic sweep, and every write that needs a running attempt
(ends_overdue_attempt_first) all end it the same way, at the deadline itself."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.utils import timezone

from trials.grading import grading
from trials.models import Attempt, Reservation
from trials.services._shared import _locked_with_pauses, _passed_deadline
from trials.services.sync import _queue_deadline_check, attempt_sandbox_sync, terminals_end_for_attempt

Service = TypeVar("Service", bound=Callable[..., Any])


def ends_overdue_attempt_first(service: Service) -> Service:
    """For a write that needs a running attempt: an attempt past its deadline is ended there first.

    The end runs before the write's own transaction opens (and, with no caller's transaction
    around it, commits), so the refusal that follows can't roll it back. A stopped Celery worker
    runs neither the deadline task nor the sweep; this does not depend on them. The attempt comes
    as `attempt` or `attempt_id`; the write gets the same `now` as the check.
    """

    @functools.wraps(service)
    def guarded(**kwargs: Any) -> Any:
        now = kwargs.get("now") or timezone.now()
        attempt = kwargs.get("attempt")
        attempt_end_if_overdue(attempt_id=attempt.pk if attempt is not None else kwargs["attempt_id"], now=now)
        return service(**{**kwargs, "now": now})

    return guarded  # type: ignore[return-value]  # wraps keeps the service's signature: guarded takes its keywords


def _queue_final_scoring(attempt: Attempt) -> None:
    grading().attempt_ended(attempt)


def _end(attempt: Attempt, *, reason: str, at: datetime) -> Attempt:
    attempt.pauses.filter(ended_at__isnull=True, started_at__lt=at).update(ended_at=at)
    attempt.pauses.filter(ended_at__isnull=True).delete()  # opened after the end moment: never happened
    attempt.status = Attempt.Status.ENDED
    attempt.ended_at = at
    attempt.end_reason = reason
    attempt.save(update_fields=["status", "ended_at", "end_reason"])
    if not attempt.is_local:
        return attempt  # a harness's or an import's run has no terminal here and is scored where it ran
    _reservation_release_rest(attempt, at)
    # The sandbox freezes at once; terminals are told why, their sockets close and their holders
    # end (the workspace stays, in the state it was frozen in, for the final score).
    attempt_sandbox_sync(attempt)
    attempt_id, why = attempt.pk, attempt.get_end_reason_display()
    transaction.on_commit(lambda: terminals_end_for_attempt(attempt_id=attempt_id, reason=why))
    transaction.on_commit(lambda: _queue_final_scoring(attempt))
    return attempt


def _reservation_release_rest(attempt: Attempt, at: datetime) -> None:
    """The attempt ended at `at`: its slot's workstation, GPUs and hours are free again once the margin
    for its final scoring has passed, not at the slot's booked end."""
    if attempt.reservation_id is None:
        return
    reservation = Reservation.objects.select_for_update().get(pk=attempt.reservation_id)
    release = max(at + settings.RESERVATION_RELEASE_MARGIN, reservation.starts_at + timedelta(minutes=1))
    if release < reservation.ends_at:
        reservation.ends_at = release
        reservation.save(update_fields=["ends_at"])


def _end_if_overdue(attempt: Attempt, now: datetime) -> bool:
    """With the attempt locked and its pauses loaded: end it at its deadline if that has passed.

    At the deadline itself, not at `now`: however late this runs, the participant gets no extra
    time on the clock. Past the slot's end it is the reservation's end.
    """
    deadline = _passed_deadline(attempt, now)
    if deadline is None:
        return False
    hard_stop = attempt.hard_stop_at is not None and deadline >= attempt.hard_stop_at
    reason = Attempt.EndReason.RESERVATION_END if hard_stop else Attempt.EndReason.DEADLINE
    _end(attempt, reason=reason, at=deadline)
    return True


@transaction.atomic
def attempt_enforce_deadline(*, attempt_id: int, now: datetime | None = None) -> Attempt | None:
    """End the attempt if its deadline has passed; idempotent, safe to call any number of times.

    The attempt ends at the deadline itself, not at `now`: a sweep that runs late never hands
    the participant extra time on the clock.
    """
    now = now or timezone.now()
    attempt = _locked_with_pauses(attempt_id)
    if attempt is None or not attempt.is_running or not attempt.is_local or _end_if_overdue(attempt, now):
        return attempt
    deadline = attempt.deadline()
    if deadline is not None:
        # Early (a pause moved it, or this host's clock runs ahead): check again at the new deadline.
        transaction.on_commit(lambda: _queue_deadline_check(attempt.pk, deadline))
    # (No deadline: paused with no hard stop; resuming schedules the next check.)
    return attempt


def attempt_end_if_overdue(*, attempt_id: int, now: datetime | None = None) -> bool:
    """End the attempt at its deadline if that has passed; True if this call ended it.

    What the deadline task does, for the requests of an attempt that no worker has ended yet:
    run before every write that needs a running attempt (see ends_overdue_attempt_first), when
    its token authenticates and when its status is read. Most calls find time left: they read
    the attempt and its pauses, and take no lock (nor SQLite's write lock).
    """
    now = now or timezone.now()
    attempt = Attempt.objects.prefetch_related("pauses").filter(pk=attempt_id).first()
    if attempt is None or _passed_deadline(attempt, now) is None:
        return False
    return _attempt_end_overdue(attempt_id=attempt_id, now=now)


@transaction.atomic
def _attempt_end_overdue(*, attempt_id: int, now: datetime) -> bool:
    attempt = _locked_with_pauses(attempt_id)  # whoever locks it second finds it ended
    return attempt is not None and _end_if_overdue(attempt, now)


def attempts_end_overdue(*, now: datetime | None = None) -> list[int]:
    """The periodic sweep: end every running attempt past its deadline. Returns the ids ended."""
    now = now or timezone.now()
    ended = []
    # Pauses only push a deadline later, so clock_started_at + time_limit <= now (or the hard stop) is a
    # cheap SQL filter that every overdue attempt passes; the exact deadline needs the pauses. While
    # it is prepared (no clock start: NULL, never true) only the hard stop can end it.
    earliest_end = ExpressionWrapper(F("clock_started_at") + F("time_limit"), output_field=DateTimeField())
    candidates = (
        # Runs entered by a harness keep the harness's clock: it finishes them.
        Attempt.objects.filter(status=Attempt.Status.RUNNING, source=Attempt.Source.LOCAL)
        .annotate(earliest_end=earliest_end)
        .filter(Q(hard_stop_at__lte=now) | Q(earliest_end__lte=now))
        .prefetch_related("pauses")
    )
    for attempt in candidates:
        deadline = attempt.deadline()
        if deadline is not None and deadline <= now:
            result = attempt_enforce_deadline(attempt_id=attempt.pk, now=now)
            if result is not None and result.status == Attempt.Status.ENDED:
                ended.append(attempt.pk)
    return ended
