"""Booking: a reservation of a workstation's GPUs for an expert's attempt, its cancellation and a moved end."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit.services import audit_record
from environments.models import Environment
from rebench_site import roles
from rebench_site.errors import NotAllowed, ServiceError
from trials.models import Attempt, Gpu, Reservation, Workstation
from trials.services.sync import _schedule_deadline

# A booking may start this much in the past: the form was filled a moment ago.
BOOKING_CLOCK_SKEW = timedelta(minutes=2)


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
    """The bookings that count against an environment's attempts-per-expert limit: those whose attempt's
    clock started, and those not cancelled and not over yet (a slot that passed unused, or whose
    environment was never ready, was no attempt)."""
    return Q(cancelled_at__isnull=True) & (Q(attempt__clock_started_at__isnull=False) | Q(ends_at__gt=now))


def expert_attempts_counted(*, expert: User, environment: Environment, now: datetime | None = None) -> int:
    now = now or timezone.now()
    return (
        Reservation.objects.filter(expert=expert, environment=environment)
        .filter(expert_attempts_counted_q(now=now))
        .count()
    )


def _overlapping(qs: QuerySet[Reservation], starts_at: datetime, ends_at: datetime) -> QuerySet[Reservation]:
    return qs.filter(cancelled_at__isnull=True, starts_at__lt=ends_at, ends_at__gt=starts_at)


def gpus_out_of_service(workstations: Iterable[Workstation] | None = None) -> dict[int, dict[int, str]]:
    """Per workstation (by pk), its GPUs that can't be booked (index: why); every workstation's with
    None. One query. A GPU without a row has no known problem."""
    rows = Gpu.objects.exclude(problem="")
    if workstations is not None:
        rows = rows.filter(workstation__in=list(workstations))
    found: dict[int, dict[int, str]] = {}
    for workstation_id, index, problem in rows.values_list("workstation", "index", "problem"):
        found.setdefault(workstation_id, {})[index] = problem
    return found


def gpus_free(
    *, workstation: Workstation, holders: Iterable[Reservation], out_of_service: Iterable[int] = ()
) -> list[int]:
    """The workstation's GPU indices that none of `holders` (its live reservations overlapping some
    time) holds and that are in service; none if one of them holds the whole host."""
    held: set[int] = set()
    for reservation in holders:
        if reservation.holds_whole_host:
            return []
        held.update(reservation.gpus)
    blocked = held | set(out_of_service)
    return [index for index in range(workstation.gpu_count) if index not in blocked]


def gpus_choose(*, free: Sequence[int], count: int) -> list[int] | None:
    """`count` of the `free` GPU indices, kept together: the start of the shortest run of consecutive
    free indices that fits them (bigger runs stay whole for bigger bookings, and an attempt's GPUs,
    and the cores the sandbox policy places beside them, are neighbours); with no run long enough,
    the lowest free ones. None if fewer than `count` are free."""
    if count > len(free):
        return None
    runs: list[list[int]] = []
    for index in sorted(free):
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    fitting = [run for run in runs if len(run) >= count]
    if fitting:
        return min(fitting, key=len)[:count]
    return sorted(free)[:count]


def reservation_gpu_count(*, environment: Environment, workstation: Workstation, requested: int | None) -> int:
    """How many GPUs a booking holds: the environment's minimum, or as many as an admin asked for up to
    its maximum. Raises ServiceError (field gpu_count) for a count outside those bounds."""
    if requested is None:
        return environment.gpus_min
    most = max(environment.gpus_min, environment.gpus_max)
    if not environment.gpus_min <= requested <= most:
        raise ServiceError(f"{environment.slug} runs on {environment.gpus_label} GPUs.", field="gpu_count")
    if requested > workstation.gpu_count:
        raise ServiceError(f"{workstation.name} has {workstation.gpu_count} GPU(s).", field="gpu_count")
    return requested


def _gpus_refusal(*, workstation: Workstation, count: int, free: list[int], out_of_service: dict[int, str]) -> str:
    if count == 0 or (not free and not out_of_service):
        return f"{workstation.name} is already booked at that time."
    broken = ""
    if out_of_service:
        broken = " (out of service: " + "; ".join(f"GPU {i}: {why}" for i, why in sorted(out_of_service.items())) + ")"
    return (
        f"{workstation.name} has {len(free)} of its {workstation.gpu_count} GPUs free at that time{broken}; "
        f"this booking needs {count}."
    )


@transaction.atomic
def reservation_create(
    *,
    expert: User,
    environment: Environment,
    workstation: Workstation,
    starts_at: datetime,
    created_by: User,
    ends_at: datetime | None = None,
    gpu_count: int | None = None,
    now: datetime | None = None,
) -> Reservation:
    """Book `workstation` for `expert`: `gpu_count` of its GPUs (the environment's minimum unless an admin
    asks for more, up to its maximum), chosen by `gpus_choose` among those free for the whole slot; an
    environment that needs no GPU books the whole workstation."""
    now = now or timezone.now()
    if created_by.pk != expert.pk and not roles.is_admin(created_by):
        raise NotAllowed("Only admins book for someone else.")
    if gpu_count is not None and gpu_count != environment.gpus_min and not roles.is_admin(created_by):
        raise NotAllowed("Only admins book more GPUs than the environment needs.")
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
    count = reservation_gpu_count(environment=environment, workstation=workstation, requested=gpu_count)
    holders = list(_overlapping(Reservation.objects.filter(workstation=workstation), starts_at, ends_at))
    out_of_service = gpus_out_of_service([workstation]).get(workstation.pk, {})
    free = gpus_free(workstation=workstation, holders=holders, out_of_service=out_of_service)
    gpus = gpus_choose(free=free, count=count) if count else ([] if not holders else None)
    if gpus is None:
        raise ServiceError(
            _gpus_refusal(workstation=workstation, count=count, free=free, out_of_service=out_of_service),
            field="starts_at",
        )
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
                gpus=gpus,
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
        on_host = _overlapping(others.filter(workstation=reservation.workstation_id), old_end, ends_at)
        taken = next((r for r in on_host.order_by("starts_at") if _share_a_gpu(r, reservation)), None)
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


def _share_a_gpu(one: Reservation, other: Reservation) -> bool:
    """Whether two reservations of one workstation hold a GPU in common (the whole host holds them all)."""
    return one.holds_whole_host or other.holds_whole_host or bool(set(one.gpus) & set(other.gpus))
