"""Reads for trials that take more than one query: free slots, the schedule grid, attempt clocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.utils import timezone

from environments.models import Environment
from rebench_site import roles
from trials.models import Attempt, Reservation, Workstation
from trials.services import reservation_min_length, workstation_meets


@dataclass
class Slot:
    starts_at: datetime
    ends_at: datetime
    free: bool
    why: str = ""
    is_now: bool = False


@dataclass
class WorkstationDay:
    workstation: Workstation
    status: str
    slots: list[Slot] = field(default_factory=list)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, start + timedelta(days=1)


def eligible_workstations(environment: Environment) -> list[Workstation]:
    return [ws for ws in Workstation.objects.all() if workstation_meets(ws, environment) is None]


def live_reservations(start: datetime, end: datetime) -> QuerySet[Reservation]:
    return Reservation.objects.filter(cancelled_at__isnull=True, starts_at__lt=end, ends_at__gt=start)


def free_slots(
    *, environment: Environment, day: date, expert: AbstractBaseUser | None = None, now: datetime | None = None
) -> list[WorkstationDay]:
    """Hourly start times on `day` for each workstation that can host `environment`.

    A slot is free when its whole length (time limit + set-up) overlaps no live reservation on
    the workstation nor one of the expert's own, starts in the future, and the workstation is bookable.
    """
    now = now or timezone.now()
    length = reservation_min_length(environment)
    day_start, day_end = day_bounds(day)
    workstations = eligible_workstations(environment)
    busy = list(live_reservations(day_start, day_end + length).filter(workstation__in=workstations))
    mine = list(live_reservations(day_start, day_end + length).filter(expert=expert)) if expert else []
    result = []
    for ws in workstations:
        status = ws.effective_status(now)
        row = WorkstationDay(workstation=ws, status=status)
        taken = [r for r in busy if r.workstation_id == ws.pk]
        starts = [day_start + timedelta(hours=hour) for hour in range(24)]
        # Today also offers "now" (this minute, within the booking's clock-skew allowance), so
        # nobody waits for the hour to turn.
        this_minute = now.replace(second=0, microsecond=0)
        if day_start <= now < day_end and this_minute not in starts:
            starts.append(this_minute)
            starts.sort()
        for start in starts:
            end = start + length
            is_now = start == this_minute
            why = ""
            if start < now and not is_now:
                why = "past"
            elif status != Workstation.Status.ACTIVE:
                why = status
            elif any(r.starts_at < end and r.ends_at > start for r in taken):
                why = "booked"
            elif any(r.starts_at < end and r.ends_at > start for r in mine):
                why = "you have a booking then"
            row.slots.append(Slot(starts_at=start, ends_at=end, free=not why, why=why, is_now=is_now))
        result.append(row)
    return result


@dataclass
class GridCell:
    hour: datetime
    reservation: Reservation | None
    is_start: bool


@dataclass
class GridRow:
    workstation: Workstation
    status: str
    cells: list[GridCell]


def schedule_grid(*, day: date, now: datetime | None = None) -> tuple[list[datetime], list[GridRow]]:
    """Workstations × hours of `day`; each cell holds the live reservation covering that hour."""
    now = now or timezone.now()
    day_start, day_end = day_bounds(day)
    hours = [day_start + timedelta(hours=h) for h in range(24)]
    reservations = list(
        live_reservations(day_start, day_end).select_related("expert", "environment", "attempt").order_by("starts_at")
    )
    rows = []
    for ws in Workstation.objects.all():
        cells = []
        mine = [r for r in reservations if r.workstation_id == ws.pk]
        for hour in hours:
            covering = next((r for r in mine if r.starts_at < hour + timedelta(hours=1) and r.ends_at > hour), None)
            is_start = covering is not None and (covering.starts_at >= hour or hour == day_start)
            cells.append(GridCell(hour=hour, reservation=covering, is_start=is_start))
        rows.append(GridRow(workstation=ws, status=ws.effective_status(now), cells=cells))
    return hours, rows


@dataclass(frozen=True)
class ClockState:
    state: str  # running | paused | ended
    elapsed_seconds: float
    remaining_seconds: float | None
    time_limit_seconds: float
    deadline: datetime | None
    hard_stop_at: datetime | None
    pause_reason: str | None
    server_now: datetime


def attempt_clock(attempt: Attempt, now: datetime | None = None) -> ClockState:
    """The numbers the countdown is drawn from; `attempt` should have `pauses` prefetched."""
    now = now or timezone.now()
    elapsed = attempt.elapsed(now)
    open_pause = attempt.open_pause() if attempt.is_running else None
    if not attempt.is_running:
        state = "ended"
    elif open_pause:
        state = "paused"
    else:
        state = "running"
    deadline = attempt.deadline() if attempt.is_running else None
    if attempt.is_running:
        remaining_clock = (attempt.time_limit - elapsed).total_seconds()
        remaining = remaining_clock
        if deadline is not None:
            remaining = min(remaining_clock, (deadline - now).total_seconds())
        remaining = max(0.0, remaining)
    else:
        remaining = None
    return ClockState(
        state=state,
        elapsed_seconds=elapsed.total_seconds(),
        remaining_seconds=remaining,
        time_limit_seconds=attempt.time_limit.total_seconds(),
        deadline=deadline,
        hard_stop_at=attempt.hard_stop_at,
        pause_reason=open_pause.reason if open_pause else None,
        server_now=now,
    )


def attempts_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Attempt]:
    """The attempts `user` may see: their own, or all of them for an admin.

    Callers answer 404 for anything outside it, so attempt ids don't leak.
    """
    if not user.is_authenticated:
        return Attempt.objects.none()
    return Attempt.objects.all() if roles.is_admin(user) else Attempt.objects.filter(user_id=user.pk)


def attempts_for(user: AbstractBaseUser) -> QuerySet[Attempt]:
    return (
        Attempt.objects.filter(user=user)
        .select_related("environment", "workstation", "reservation")
        .prefetch_related("pauses")
    )


def reservations_for(user: AbstractBaseUser) -> QuerySet[Reservation]:
    return (
        Reservation.objects.filter(expert=user)
        .select_related("environment", "workstation", "attempt")
        .order_by("-starts_at")
    )
