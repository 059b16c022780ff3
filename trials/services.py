"""Writes for trials: workstations, booking, and the attempt lifecycle on a server-owned clock."""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.utils import timezone

from audit.services import audit_record
from environments import packages
from environments.models import Environment
from environments.services import environment_configuration_for
from rebench_site import roles
from rebench_site.errors import NotAllowed, ServiceError
from trials.models import Attempt, AttemptToken, Note, Pause, Reservation, TerminalSession, Workstation

User = AbstractBaseUser
log = logging.getLogger(__name__)
# A booking may start this much in the past: the form was filled a moment ago.
BOOKING_CLOCK_SKEW = timedelta(minutes=2)
NOTE_MAX_CHARS = 10_000


# --- workstations -----------------------------------------------------------------------------


@transaction.atomic
def workstation_register(
    *,
    name: str,
    host: str,
    gpu_count: int,
    gpu_model: str = "",
    queue_name: str = "",
    backend: str = Workstation.Backend.SSH,
    ssh_port: int = 22,
    ssh_user: str = "",
) -> Workstation:
    if backend not in Workstation.Backend.values:
        raise ServiceError(f"Unknown backend {backend!r}.", field="backend")
    if gpu_count < 0:
        raise ServiceError("GPU count can't be negative.", field="gpu_count")
    queue_name = queue_name or f"ws.{name}"
    if Workstation.objects.filter(name=name).exists():
        raise ServiceError(f"A workstation named {name!r} exists already.", field="name")
    if Workstation.objects.filter(queue_name=queue_name).exists():
        raise ServiceError(f"Queue {queue_name!r} belongs to another workstation.", field="queue_name")
    workstation = Workstation(
        name=name,
        host=host,
        gpu_count=gpu_count,
        gpu_model=gpu_model,
        queue_name=queue_name,
        backend=backend,
        ssh_port=ssh_port,
        ssh_user=ssh_user,
    )
    try:
        workstation.full_clean()
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise ServiceError(" ".join(messages), field=field) from exc
    workstation.save()
    return workstation


@transaction.atomic
def workstation_set_status(*, workstation: Workstation, status: str) -> Workstation:
    """Admins drain (no new bookings; running attempts go on), reactivate or take offline."""
    if status not in Workstation.Status.values:
        raise ServiceError(f"Unknown status {status!r}.", field="status")
    Workstation.objects.filter(pk=workstation.pk).update(status=status)
    workstation.status = status
    return workstation


@transaction.atomic
def workstation_update(*, workstation: Workstation, status: str | None = None, **changes: object) -> Workstation:
    """Edit a workstation; a status change and the other edits land together or not at all."""
    if status is not None:
        workstation_set_status(workstation=workstation, status=status)
    if changes:
        for name, value in changes.items():
            setattr(workstation, name, value)
        try:
            with transaction.atomic():
                # Only the edited columns: a full save would write back a stale heartbeat.
                workstation.save(update_fields=list(changes))
        except IntegrityError as exc:  # a concurrent edit took the name or queue after validation
            raise ServiceError("Another workstation took that name or queue just now.") from exc
    return workstation


def workstation_record_heartbeat(
    *, workstation_id: int, sandbox_problems: list[str] | None = None, at: datetime | None = None
) -> bool:
    """Called by the heartbeat task on the workstation's own queue, with its answer to "can you sandbox?".

    False if the workstation no longer exists. A workstation that reports problems can't be booked.
    """
    at = at or timezone.now()
    changes: dict[str, object] = {"last_heartbeat_at": at}
    if sandbox_problems is not None:
        changes.update(sandbox_problems=list(sandbox_problems), sandbox_checked_at=at)
    return bool(Workstation.objects.filter(pk=workstation_id).update(**changes))


# --- booking -----------------------------------------------------------------------------------


def reservation_min_length(environment: Environment) -> timedelta:
    return environment.time_limit + settings.RESERVATION_SETUP_TIME


def workstation_meets(workstation: Workstation, environment: Environment) -> str | None:
    """None if the workstation can host the environment, else why not."""
    if workstation.gpu_count < environment.gpus_min:
        return (
            f"{workstation.name} has {workstation.gpu_count} GPU(s); {environment.slug} needs {environment.gpus_label}."
        )
    if (
        environment.gpus_min
        and environment.gpu_model
        and environment.gpu_model.lower() not in workstation.gpu_model.lower()
    ):
        has = workstation.gpu_model or "none"
        return f"{environment.slug} needs {environment.gpu_model} GPUs; {workstation.name} has {has}."
    return None


def expert_attempts_counted_q(*, now: datetime) -> Q:
    """The bookings that count against an environment's attempts-per-expert limit: those whose attempt
    started, and those not cancelled and not over yet (a slot that passed unused was no attempt)."""
    return Q(cancelled_at__isnull=True) & (Q(attempt__isnull=False) | Q(ends_at__gt=now))


def expert_attempts_counted(*, expert: User, environment: Environment, now: datetime | None = None) -> int:
    now = now or timezone.now()
    return (
        Reservation.objects.filter(expert=expert, environment=environment)
        .filter(expert_attempts_counted_q(now=now))
        .count()
    )


def _overlapping(qs, starts_at: datetime, ends_at: datetime):  # type: ignore[no-untyped-def]
    return qs.filter(cancelled_at__isnull=True, starts_at__lt=ends_at, ends_at__gt=starts_at)


@transaction.atomic
def reservation_create(
    *,
    expert: User,
    environment: Environment,
    workstation: Workstation,
    starts_at: datetime,
    created_by: User,
    ends_at: datetime | None = None,
    now: datetime | None = None,
) -> Reservation:
    now = now or timezone.now()
    if created_by.pk != expert.pk and not roles.is_admin(created_by):
        raise NotAllowed("Only admins book for someone else.")
    if not roles.has_role(expert, roles.EXPERT):
        raise ServiceError(f"{expert} is not an expert.", field="expert")
    if not environment.is_active:
        raise ServiceError(f"{environment.slug} is not open for booking.", field="environment")
    if timezone.is_naive(starts_at):
        raise ServiceError("Start time needs a time zone.", field="starts_at")
    if starts_at < now - BOOKING_CLOCK_SKEW:
        raise ServiceError("That start time is in the past.", field="starts_at")
    if starts_at > now + timedelta(days=settings.BOOKING_HORIZON_DAYS):
        raise ServiceError(f"Bookings open at most {settings.BOOKING_HORIZON_DAYS} days ahead.", field="starts_at")
    if ends_at is not None and timezone.is_naive(ends_at):
        raise ServiceError("End time needs a time zone.", field="ends_at")
    min_length = reservation_min_length(environment)
    ends_at = ends_at or starts_at + min_length
    if ends_at - starts_at < min_length:
        raise ServiceError(f"The slot must be at least {min_length} (time limit plus set-up).", field="ends_at")
    if ends_at - starts_at > settings.RESERVATION_MAX_LENGTH:
        raise ServiceError(f"A slot lasts at most {settings.RESERVATION_MAX_LENGTH}.", field="ends_at")
    # Lock the workstation row, then the expert's: bookings on one workstation (or by one expert)
    # queue behind each other, so the overlap checks below see every committed booking.
    workstation = Workstation.objects.select_for_update().get(pk=workstation.pk)
    get_user_model().objects.select_for_update().filter(pk=expert.pk).first()
    why_not = workstation_meets(workstation, environment)
    if why_not:
        raise ServiceError(why_not, field="workstation")
    refusal = workstation.booking_refusal(now)
    if refusal == "can't sandbox":
        raise ServiceError(
            f"{workstation.name} can't sandbox attempts ({'; '.join(workstation.sandbox_problems)}) "
            "and takes no bookings until an admin fixes it.",
            field="workstation",
        )
    if refusal is not None:
        raise ServiceError(f"{workstation.name} is {refusal} and takes no bookings.", field="workstation")
    if _overlapping(Reservation.objects.filter(workstation=workstation), starts_at, ends_at).exists():
        raise ServiceError(f"{workstation.name} is already booked at that time.", field="starts_at")
    if _overlapping(Reservation.objects.filter(expert=expert), starts_at, ends_at).exists():
        raise ServiceError("You already hold a reservation that overlaps this one.", field="starts_at")
    limit = environment.attempts_per_expert
    if limit and (made := expert_attempts_counted(expert=expert, environment=environment, now=now)) >= limit:
        who = "You have" if expert.pk == created_by.pk else f"{expert} has"
        raise ServiceError(
            f"{who} already booked or made {made} attempt{'s' if made != 1 else ''} at {environment.title}; "
            f"the study allows {limit} per expert.",
            field="environment",
        )
    try:
        with transaction.atomic():
            return Reservation.objects.create(
                expert=expert,
                workstation=workstation,
                environment=environment,
                starts_at=starts_at,
                ends_at=ends_at,
                created_by=created_by,
                # A slot holds the whole workstation; its attempt's sandbox sees the GPUs its environment needs.
                gpus=list(range(environment.gpus_min)),
            )
    except IntegrityError as exc:  # the PostgreSQL exclusion constraints, should a check above be bypassed
        raise ServiceError("That slot was just taken.", field="starts_at") from exc


@transaction.atomic
def reservation_cancel(*, reservation: Reservation, by: User, now: datetime | None = None) -> Reservation:
    now = now or timezone.now()
    reservation = Reservation.objects.select_for_update().get(pk=reservation.pk)
    if reservation.expert_id != by.pk and not roles.is_admin(by):
        raise NotAllowed("That reservation is not yours.")
    if reservation.cancelled_at:
        return reservation
    if Attempt.objects.filter(reservation=reservation).exists():
        raise ServiceError("The attempt has started; it can't be cancelled any more.")
    if now >= reservation.starts_at and not roles.is_admin(by):
        raise ServiceError("The slot has begun; only an admin can cancel it now.")
    reservation.cancelled_at = now
    reservation.save(update_fields=["cancelled_at"])
    if reservation.expert_id != by.pk:
        _reservation_audit(by=by, action="reservation.cancel", reservation=reservation, attempt=None, at=now)
    return reservation


def _reservation_audit(
    *,
    by: User,
    action: str,
    reservation: Reservation,
    attempt: Attempt | None,
    before: dict[str, object] | None = None,
    after: dict[str, object] | None = None,
    note: str = "",
    at: datetime,
) -> None:
    audit_record(
        actor=by,
        action=action,
        subject=f"reservation {reservation.pk} ({reservation.expert}, {reservation.workstation.name})",
        attempt_id=attempt.pk if attempt is not None else None,
        before=before,
        after=after,
        note=note,
        at=at,
    )


@transaction.atomic
def reservation_change_end(
    *, reservation: Reservation, by: User, ends_at: datetime, note: str = "", now: datetime | None = None
) -> Reservation:
    """An admin moves a slot's end: later to give an attempt held up by a broken machine its time back,
    earlier to free the workstation (maintenance, a no-show). A running attempt's hard stop follows the
    slot's end, and its sandbox and deadline task are told. The start never moves: that is a new booking."""
    if not roles.is_admin(by):
        raise NotAllowed("Only admins change a reservation's end.")
    now = now or timezone.now()
    if timezone.is_naive(ends_at):
        raise ServiceError("End time needs a time zone.", field="ends_at")
    note = note.strip()
    if len(note) > 500:
        raise ServiceError("A note is at most 500 characters.", field="note")
    # The workstation's row first, then the expert's, then the slot: the order bookings lock in.
    current = Reservation.objects.get(pk=reservation.pk)
    Workstation.objects.select_for_update().get(pk=current.workstation_id)
    get_user_model().objects.select_for_update().filter(pk=current.expert_id).first()
    reservation = (
        Reservation.objects.select_for_update()
        .select_related("environment", "workstation", "expert")
        .get(pk=reservation.pk)
    )
    if reservation.cancelled_at:
        raise ServiceError("That reservation is cancelled.", field="ends_at")
    attempt = Attempt.objects.select_for_update().prefetch_related("pauses").filter(reservation=reservation).first()
    if attempt is not None and attempt.status != Attempt.Status.RUNNING:
        raise ServiceError("Its attempt has ended; the slot is history.", field="ends_at")
    if ends_at <= now:
        why = "; to stop the attempt now, end it" if attempt is not None else ""
        raise ServiceError(f"The new end is in the past{why}.", field="ends_at")
    length = ends_at - reservation.starts_at
    if length > settings.RESERVATION_MAX_LENGTH:
        raise ServiceError(f"A slot lasts at most {settings.RESERVATION_MAX_LENGTH}.", field="ends_at")
    min_length = reservation_min_length(reservation.environment)
    if attempt is None and length < min_length:
        # Cutting a running attempt short is the admin's call; a slot not yet used must still fit one.
        raise ServiceError(f"The slot must be at least {min_length} (time limit plus set-up).", field="ends_at")
    if ends_at == reservation.ends_at:
        return reservation
    old_end = reservation.ends_at
    if ends_at > old_end:
        others = Reservation.objects.exclude(pk=reservation.pk)
        taken = _overlapping(others.filter(workstation=reservation.workstation_id), old_end, ends_at).first()
        if taken is not None:
            raise ServiceError(
                f"{reservation.workstation.name} is booked from {timezone.localtime(taken.starts_at):%a %d %b %H:%M}"
                f" ({taken.expert}); move or cancel that booking first.",
                field="ends_at",
            )
        if _overlapping(others.filter(expert=reservation.expert_id), old_end, ends_at).exists():
            raise ServiceError(f"{reservation.expert} holds another reservation in that time.", field="ends_at")
    reservation.ends_at = ends_at
    try:
        with transaction.atomic():
            reservation.save(update_fields=["ends_at"])
    except IntegrityError as exc:  # the PostgreSQL exclusion constraints, should a check above be bypassed
        raise ServiceError("That time was just taken.", field="ends_at") from exc
    if attempt is not None:
        attempt.hard_stop_at = ends_at
        attempt.save(update_fields=["hard_stop_at"])
        _schedule_deadline(attempt)
    _reservation_audit(
        by=by,
        action="reservation.extend" if ends_at > old_end else "reservation.shorten",
        reservation=reservation,
        attempt=attempt,
        before={"ends_at": old_end.isoformat()},
        after={"ends_at": ends_at.isoformat()},
        note=note,
        at=now,
    )
    return reservation


# --- attempts ----------------------------------------------------------------------------------


def _queue_deadline_check(attempt_id: int, deadline: datetime) -> None:
    from trials.tasks import attempt_enforce_deadline

    attempt_enforce_deadline.apply_async(args=[attempt_id], eta=deadline)


def _schedule_deadline(attempt: Attempt) -> None:
    """After commit, queue the deadline task for the attempt's current deadline (if it has one), and
    tell the workstation: it freezes the sandbox during a pause and at the deadline by itself."""
    attempt_sandbox_sync(attempt)
    deadline = Attempt.objects.prefetch_related("pauses").get(pk=attempt.pk).deadline()
    if deadline is None:
        return
    transaction.on_commit(lambda: _queue_deadline_check(attempt.pk, deadline))


def _locked_attempt(attempt: Attempt) -> Attempt:
    return Attempt.objects.select_for_update().prefetch_related("pauses").get(pk=attempt.pk)


def _locked_with_pauses(attempt_id: int) -> Attempt | None:
    return Attempt.objects.select_for_update().prefetch_related("pauses").filter(pk=attempt_id).first()


def _require_owner(attempt: Attempt, user: User) -> None:
    if attempt.user_id != user.pk:
        raise NotAllowed("That attempt is not yours.")


def _require_running(attempt: Attempt, now: datetime | None = None) -> None:
    if attempt.status != Attempt.Status.RUNNING:
        raise ServiceError(f"The attempt has ended ({attempt.get_end_reason_display()}).", field="attempt")
    if now is not None and _passed_deadline(attempt, now) is not None:
        # Its time ran out between the check before this write and the lock: refuse all the same
        # (the next request, the deadline task or the sweep ends it).
        raise ServiceError("The attempt's time is up.", field="attempt")


def _passed_deadline(attempt: Attempt, now: datetime) -> datetime | None:
    """The deadline (or the slot's hard stop) of a running attempt on this site's clock, if it is at or before `now`."""
    if not attempt.is_running or not attempt.is_local:
        return None
    deadline = attempt.deadline()
    return deadline if deadline is not None and deadline <= now else None


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

    return guarded  # type: ignore[return-value]


@transaction.atomic
def attempt_start(*, reservation: Reservation, by: User, now: datetime | None = None) -> Attempt:
    now = now or timezone.now()
    reservation = Reservation.objects.select_for_update().select_related("environment").get(pk=reservation.pk)
    if reservation.expert_id != by.pk:
        raise NotAllowed("Only the expert who booked the slot starts its attempt.")
    if reservation.cancelled_at:
        raise ServiceError("That reservation was cancelled.", field="reservation")
    existing = Attempt.objects.filter(reservation=reservation).first()
    if existing:
        return existing
    if now < reservation.starts_at - settings.ATTEMPT_EARLY_START:
        raise ServiceError(
            f"The slot opens at {timezone.localtime(reservation.starts_at):%Y-%m-%d %H:%M %Z}.", field="reservation"
        )
    if now >= reservation.ends_at:
        raise ServiceError("The slot is over.", field="reservation")
    # Provenance, fixed now: the scale the workstations run it at, and the scorer as it is at the start.
    package = packages.find(reservation.environment.slug)
    attempt = Attempt.objects.create(
        participant_kind=Attempt.ParticipantKind.HUMAN,
        user_id=reservation.expert_id,
        reservation=reservation,
        environment=reservation.environment,
        workstation_id=reservation.workstation_id,
        time_limit=reservation.environment.time_limit,
        hard_stop_at=reservation.ends_at,
        started_at=now,
        configuration=environment_configuration_for(environment=reservation.environment),
        package_version=package.version if package else "",
        scorer_digest=package.scorer_digest() if package else "",
    )
    _schedule_deadline(attempt)
    from graders.services import workspace_prepare_queue  # graders builds on trials: import at call time

    workspace_prepare_queue(attempt)  # the starting solution is copied on the workstation, after commit
    return attempt


def attempt_workspace_mark_ready(*, attempt_id: int, now: datetime | None = None) -> bool:
    """The workstation finished setting the workspace up: the page stops saying it is being prepared.

    The first time counts (a re-run of the set-up finds it prepared and changes nothing); False if it was already.
    """
    return bool(
        Attempt.objects.filter(pk=attempt_id, workspace_ready_at__isnull=True).update(
            workspace_ready_at=now or timezone.now()
        )
    )


EXPERT_PAUSE_REASONS = {Pause.Reason.BREAK}
ADMIN_PAUSE_REASONS = {Pause.Reason.BREAK, Pause.Reason.ADMIN, Pause.Reason.TECHNICAL}


@ends_overdue_attempt_first
@transaction.atomic
def attempt_pause(
    *, attempt: Attempt, by: User | None, reason: str, note: str = "", now: datetime | None = None
) -> Pause:
    """Stop the clock. Experts pause for a break; admins for any reason; `scoring` is the system's (by=None)."""
    now = now or timezone.now()
    attempt = _locked_attempt(attempt)
    if reason not in Pause.Reason.values:
        raise ServiceError(f"Unknown pause reason {reason!r}.", field="reason")
    if by is None:
        if reason != Pause.Reason.SCORING:
            raise ServiceError("Only scoring pauses are made by the system.", field="reason")
    elif roles.is_admin(by) and attempt.user_id != by.pk:
        if reason not in ADMIN_PAUSE_REASONS:
            raise ServiceError(f"Admins pause with one of: {', '.join(sorted(ADMIN_PAUSE_REASONS))}.", field="reason")
    else:
        _require_owner(attempt, by)
        if reason not in EXPERT_PAUSE_REASONS:
            raise ServiceError("Experts pause for a break; other pauses are an admin's.", field="reason")
    _require_running(attempt, now)
    if attempt.pauses.filter(ended_at__isnull=True).exists():
        raise ServiceError("The attempt is already paused.", field="attempt")
    before = {"deadline": attempt.deadline()}
    pause = Pause.objects.create(attempt=attempt, reason=reason, started_at=now, note=note[:500], created_by=by)
    if _admin_of_another(by, attempt):
        _audit(by, "attempt.pause", attempt, before, {"paused": reason}, note, now)
    _schedule_deadline(attempt)  # a paused attempt still ends at its slot's hard stop
    return pause


@ends_overdue_attempt_first
@transaction.atomic
def attempt_resume(*, attempt: Attempt, by: User | None, now: datetime | None = None) -> Attempt:
    now = now or timezone.now()
    attempt = _locked_attempt(attempt)
    if by is not None and not (roles.is_admin(by) and attempt.user_id != by.pk):
        _require_owner(attempt, by)
    _require_running(attempt, now)
    pause = attempt.pauses.filter(ended_at__isnull=True).first()
    if pause is None:
        raise ServiceError("The attempt is not paused.", field="attempt")
    if by is not None and not roles.is_admin(by) and pause.reason != Pause.Reason.BREAK:
        raise ServiceError(
            f"A {pause.reason} pause is ended by {'the scorer' if pause.reason == 'scoring' else 'an admin'}."
        )
    if by is None and pause.reason != Pause.Reason.SCORING:
        raise ServiceError("The system only ends scoring pauses.")
    pause.ended_at = max(now, pause.started_at + timedelta(microseconds=1))
    pause.save(update_fields=["ended_at"])
    if _admin_of_another(by, attempt):
        _audit(by, "attempt.resume", attempt, {"paused": pause.reason}, {"deadline": _deadline(attempt)}, "", now)
    _schedule_deadline(attempt)
    return attempt


@ends_overdue_attempt_first
@transaction.atomic
def attempt_add_pause(
    *,
    attempt: Attempt,
    by: User,
    started_at: datetime,
    ended_at: datetime,
    reason: str = Pause.Reason.TECHNICAL,
    note: str = "",
    now: datetime | None = None,
) -> Pause:
    """An admin gives time back after the fact (an outage, a broken workstation)."""
    now = now or timezone.now()
    if not roles.is_admin(by):
        raise NotAllowed("Only admins add pauses after the fact.")
    attempt = _locked_attempt(attempt)
    if reason not in (Pause.Reason.TECHNICAL, Pause.Reason.ADMIN):
        raise ServiceError("Pauses after the fact are technical or admin pauses.", field="reason")
    _require_running(attempt, now)
    for name, value in (("started_at", started_at), ("ended_at", ended_at)):
        if timezone.is_naive(value):
            raise ServiceError("Give the time zone too.", field=name)
    if ended_at <= started_at:
        raise ServiceError("The pause must end after it starts.", field="ended_at")
    if started_at < attempt.started_at:
        raise ServiceError("The pause starts before the attempt did.", field="started_at")
    if ended_at > now:
        raise ServiceError("A pause after the fact can't end in the future.", field="ended_at")
    before = {"deadline": attempt.deadline()}
    pause = Pause.objects.create(
        attempt=attempt, reason=reason, started_at=started_at, ended_at=ended_at, note=note[:500], created_by=by
    )
    after = {"deadline": _deadline(attempt), "pause": [started_at, ended_at], "reason": reason}
    _audit(by, "attempt.add_time", attempt, before, after, note, now)
    _schedule_deadline(attempt)
    return pause


@ends_overdue_attempt_first
@transaction.atomic
def attempt_add_note(*, attempt: Attempt, by: User, body: str, now: datetime | None = None) -> Note:
    now = now or timezone.now()
    attempt = _locked_attempt(attempt)
    _require_owner(attempt, by)
    _require_running(attempt, now)
    body = body.strip()
    if not body:
        raise ServiceError("A note needs some text.", field="body")
    if len(body) > NOTE_MAX_CHARS:
        raise ServiceError(f"A note holds at most {NOTE_MAX_CHARS} characters.", field="body")
    elapsed = Attempt.objects.prefetch_related("pauses").get(pk=attempt.pk).elapsed(now)
    return Note.objects.create(attempt=attempt, author=by, body=body, elapsed_seconds=elapsed.total_seconds())


def _queue_final_scoring(attempt: Attempt) -> None:
    from graders.services import queue_final_scoring  # graders builds on trials: import at call time

    queue_final_scoring(attempt)


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
    # The sandbox freezes at once; terminals are told why, their sockets close and their tmux
    # sessions end (the workspace stays, in the state it was frozen in, for the final score).
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
def attempt_submit(*, attempt: Attempt, by: User, now: datetime | None = None) -> Attempt:
    """The participant is done. Submitting an ended attempt changes nothing; one past its deadline ends there."""
    now = now or timezone.now()
    attempt = _locked_attempt(attempt)
    _require_owner(attempt, by)
    if attempt.status != Attempt.Status.RUNNING or _end_if_overdue(attempt, now):
        return attempt
    return _end(attempt, reason=Attempt.EndReason.SUBMITTED, at=now)


@transaction.atomic
def attempt_end_by_admin(*, attempt: Attempt, by: User, now: datetime | None = None) -> Attempt:
    if not roles.is_admin(by):
        raise NotAllowed("Only admins end someone's attempt.")
    now = now or timezone.now()
    attempt = _locked_attempt(attempt)
    if attempt.status != Attempt.Status.RUNNING or _end_if_overdue(attempt, now):
        return attempt
    before = {"status": attempt.status, "deadline": attempt.deadline()}
    attempt = _end(attempt, reason=Attempt.EndReason.ADMIN, at=now)
    _audit(by, "attempt.end", attempt, before, {"status": attempt.status, "ended_at": attempt.ended_at}, "", now)
    return attempt


@transaction.atomic
def attempt_exclude(*, attempt: Attempt, by: User, reason: str, note: str = "", now: datetime | None = None) -> Attempt:
    """An admin leaves a run out of every leaderboard (a technical failure, a rule breach, a test
    run), saying why; it stays listed, with the reason, as excluded. Excluding it again updates why."""
    if not roles.is_admin(by):
        raise NotAllowed("Only admins exclude runs from leaderboards.")
    if reason not in Attempt.Exclusion.values:
        raise ServiceError(f"Give a reason: one of {', '.join(Attempt.Exclusion.values)}.", field="reason")
    note = note.strip()
    if len(note) > 500:
        raise ServiceError("The note holds at most 500 characters.", field="note")
    if reason == Attempt.Exclusion.OTHER and not note:
        raise ServiceError("Say what the other reason is.", field="note")
    attempt = _locked_attempt(attempt)
    before = {"excluded": attempt.excluded_reason}
    attempt.excluded_reason, attempt.excluded_note = reason, note
    attempt.excluded_by, attempt.excluded_at = by, now or timezone.now()
    attempt.save(update_fields=["excluded_reason", "excluded_note", "excluded_by", "excluded_at"])
    _audit(by, "attempt.exclude", attempt, before, {"excluded": reason}, note, attempt.excluded_at)
    _leaderboards_changed()
    return attempt


@transaction.atomic
def attempt_include(*, attempt: Attempt, by: User) -> Attempt:
    """Undo an exclusion: the run counts again."""
    if not roles.is_admin(by):
        raise NotAllowed("Only admins change what counts on leaderboards.")
    attempt = _locked_attempt(attempt)
    if not attempt.excluded_reason:
        raise ServiceError("That run is not excluded.", field="attempt")
    before = {"excluded": attempt.excluded_reason, "note": attempt.excluded_note}
    attempt.excluded_reason, attempt.excluded_note, attempt.excluded_by, attempt.excluded_at = "", "", None, None
    attempt.save(update_fields=["excluded_reason", "excluded_note", "excluded_by", "excluded_at"])
    _audit(by, "attempt.include", attempt, before, {"excluded": ""}, "", None)
    _leaderboards_changed()
    return attempt


def _admin_of_another(by: User | None, attempt: Attempt) -> bool:
    return by is not None and roles.is_admin(by) and attempt.user_id != by.pk


def _deadline(attempt: Attempt) -> datetime | None:
    """The deadline read afresh, with the pauses as they are now (the locked attempt's are as they were)."""
    return Attempt.objects.prefetch_related("pauses").get(pk=attempt.pk).deadline()


def _audit(
    by: User | None,
    action: str,
    attempt: Attempt,
    before: dict[str, object],
    after: dict[str, object],
    note: str,
    at: datetime | None,
) -> None:
    audit_record(
        actor=by,
        action=action,
        subject=f"attempt {attempt.pk}",
        attempt_id=attempt.pk,
        before=before,
        after=after,
        note=note,
        at=at,
    )


def _leaderboards_changed() -> None:
    from graders.leaderboards.services import leaderboard_request_recompute

    leaderboard_request_recompute()


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
    # Pauses only push a deadline later, so started_at + time_limit <= now (or the hard stop) is a
    # cheap SQL filter that every overdue attempt passes; the exact deadline needs the pauses.
    earliest_end = ExpressionWrapper(F("started_at") + F("time_limit"), output_field=DateTimeField())
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


# --- terminals -----------------------------------------------------------------------


def attempt_terminals_group(attempt_id: int) -> str:
    """The channel-layer group of an attempt's terminal consumers: control events only, never bytes."""
    return f"attempt-{attempt_id}-terminals"


@transaction.atomic
def attempt_token_issue(*, attempt: Attempt) -> str:
    """A new secret for the shell's `task` command; only its hash is kept, so it is shown once."""
    token = secrets.token_urlsafe(32)
    AttemptToken.objects.create(attempt=attempt, key_hash=AttemptToken.hash_of(token))
    return token


@dataclass(frozen=True)
class TerminalAccess:
    session: TerminalSession
    attempt: Attempt
    workstation: Workstation | None
    readonly: bool


@ends_overdue_attempt_first
@transaction.atomic
def terminal_session_open(*, attempt_id: int, number: int, user: User, now: datetime | None = None) -> TerminalAccess:
    """Who may attach to terminal `number`: the attempt's expert types, admins watch read-only."""
    now = now or timezone.now()
    attempt = Attempt.objects.select_related("workstation").filter(pk=attempt_id).first()
    if attempt is None:
        raise NotAllowed("No such attempt.")
    is_owner = attempt.user_id == user.pk
    if not is_owner and not roles.is_admin(user):
        raise NotAllowed("That attempt is not yours.")
    if not 1 <= number <= settings.TERMINAL_MAX_TABS:
        raise ServiceError(f"Terminals are numbered 1 to {settings.TERMINAL_MAX_TABS}.", field="number")
    _require_running(attempt, now)
    from trials.recording import recording_name

    backend = attempt.workstation.backend if attempt.workstation else Workstation.Backend.LOCAL
    session, _ = TerminalSession.objects.get_or_create(
        attempt=attempt,
        number=number,
        defaults={
            "backend": backend,
            "tmux_session": f"attempt-{attempt.pk}-terminal-{number}",
            "recording_name": recording_name(attempt.pk, number),
        },
    )
    if is_owner:
        TerminalSession.objects.filter(pk=session.pk).update(last_connected_at=now)
    return TerminalAccess(session=session, attempt=attempt, workstation=attempt.workstation, readonly=not is_owner)


def terminals_end_for_attempt(*, attempt_id: int, reason: str) -> None:
    """After an attempt ends: tell its terminal consumers (they close and end tmux), then end it on the workstation.

    Best-effort: ending the attempt has committed already, and a terminal left open here is closed
    when its consumer next checks (it refuses ended attempts). The sandbox was told to freeze by
    the ending itself (attempt_sandbox_sync).
    """
    had_terminals = TerminalSession.objects.filter(attempt_id=attempt_id).exists()
    TerminalSession.objects.filter(attempt_id=attempt_id, ended_at__isnull=True).update(
        ended_at=timezone.now(), end_reason=reason[:200]
    )
    _send_to_terminals(attempt_id, {"type": "attempt.ended", "reason": reason})
    if not had_terminals:
        return  # no shell was ever opened: nothing to end on the workstation
    attempt = Attempt.objects.select_related("workstation").filter(pk=attempt_id).first()
    # Whether or not a browser is attached: end tmux and the sandbox's processes on the workstation
    # (retried with backoff while it is unreachable) and merge the recordings into storage.
    _queue_terminals_finish(attempt_id, attempt.workstation if attempt else None)


def _control_queue(workstation: Workstation | None) -> str | None:
    return workstation.control_queue if workstation is not None else settings.LOCAL_WORKSTATION_QUEUE


def _queue_terminals_finish(attempt_id: int, workstation: Workstation | None) -> None:
    from trials.tasks import attempt_terminals_finish

    try:
        attempt_terminals_finish.apply_async(args=[attempt_id], queue=_control_queue(workstation))
    except Exception:  # the broker down must not fail the request; the recordings stay readable from the spool
        log.exception("attempt %s: could not queue the end of its terminals", attempt_id)


def attempt_sandbox_sync(attempt: Attempt) -> None:
    """After commit: the workstation hears the attempt's pause, deadline or end, and freezes or thaws its sandbox.

    A lost or late message costs nothing the expert could gain: the workstation freezes at the last
    deadline it heard, and pauses only ever move deadlines later.
    """
    if not attempt.is_local or attempt.workstation_id is None:
        return
    attempt_id = attempt.pk
    queue = _control_queue(Workstation.objects.filter(pk=attempt.workstation_id).first())

    def send() -> None:
        from trials.tasks import attempt_sandbox_control

        try:
            attempt_sandbox_control.apply_async(args=[attempt_id], queue=queue)
        except Exception:  # the broker down: the workstation keeps the last deadline it heard
            log.exception("attempt %s: could not queue its sandbox control", attempt_id)
        _send_to_terminals(attempt_id, {"type": "attempt.frozen"})

    transaction.on_commit(send)


def attempt_sandbox_control_send(*, attempt_id: int) -> dict[str, object] | None:
    """On the workstation's control queue: send the attempt's current pause/deadline/end to its sandbox."""
    from asgiref.sync import async_to_sync

    from trials import selectors

    attempt = Attempt.objects.select_related("workstation").filter(pk=attempt_id).first()
    if attempt is None or not attempt.is_local or attempt.workstation_id is None:
        return None
    control = selectors.attempt_sandbox_control(attempt_id)
    backend = selectors.workstation_backend(attempt.workstation)

    async def send() -> dict[str, object]:
        try:
            return await backend.sandbox_control(attempt_id, control)
        finally:
            await backend.disconnect()

    return async_to_sync(send)()


def terminals_finish(*, attempt_id: int) -> int:
    """End every tmux session and the sandbox's processes of an ended attempt; merge its recordings into storage.

    Idempotent. Raises BackendError while the workstation can't be reached (the task retries).
    Returns the number of recordings finalised.
    """
    from asgiref.sync import async_to_sync

    from trials import recording, selectors

    attempt = Attempt.objects.select_related("workstation").filter(pk=attempt_id).first()
    if attempt is None or attempt.status == Attempt.Status.RUNNING:
        return 0
    sessions = list(TerminalSession.objects.filter(attempt_id=attempt_id))
    backend = selectors.workstation_backend(attempt.workstation)
    spools = [(s.number, recording.spool_dir(s.recording_name) / recording.OUTPUT) for s in sessions]

    async def finish() -> None:
        try:
            if await backend.end_attempt(attempt_id):
                await asyncio.sleep(RECORDER_EXIT_SECONDS)
            await backend.collect_recordings(attempt_id, spools)
        finally:
            await backend.disconnect()

    async_to_sync(finish)()
    finalised = 0
    for session in sessions:
        if recording.finalize(session.recording_name):
            finalised += 1
    return finalised


# The pane recorders write their last read when tmux closes their pipe: a moment after kill-server.
RECORDER_EXIT_SECONDS = 0.5


NOTICE_MAX_CHARS = 1000


@transaction.atomic
def terminals_send_notice(*, attempt: Attempt, by: User, message: str) -> None:
    """An admin's message, shown in every open terminal of the attempt (e.g. "workstation reboots in 5 min")."""
    if not roles.is_admin(by):
        raise NotAllowed("Only admins message an attempt's terminals.")
    message = message.strip()
    if not message:
        raise ServiceError("A message needs some text.", field="message")
    if len(message) > NOTICE_MAX_CHARS:
        raise ServiceError(f"A message holds at most {NOTICE_MAX_CHARS} characters.", field="message")
    text = f"Message from {by.get_username()}: {message}"
    transaction.on_commit(lambda: _send_to_terminals(attempt.pk, {"type": "admin.message", "message": text}))


def _send_to_terminals(attempt_id: int, event: dict[str, str]) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(attempt_terminals_group(attempt_id), event)
    except Exception:  # the channel layer down must not fail the request that sent the event
        log.exception("attempt %s: could not send %s to its terminals", attempt_id, event.get("type"))
