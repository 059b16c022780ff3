"""Reads for trials that take more than one query: free slots, the schedule grid, attempt clocks."""

from __future__ import annotations

import hashlib
import time as time_module
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from environments import packages
from environments.models import Environment
from rebench_site import roles
from trials.models import Attempt, Pause, Reservation, SSHKey, Workstation
from trials.services import (
    expert_attempts_counted_q,
    gpus_free,
    gpus_out_of_service,
    reservation_min_length,
    workstation_meets,
)
from workstation.backends import Backend, SandboxRequest, backend_for


@dataclass
class Slot:
    starts_at: datetime
    ends_at: datetime
    free: bool
    why: str = ""
    is_now: bool = False
    # GPUs free for the whole slot, of the workstation's (None where the environment books the whole host).
    gpus_free: int | None = None

    @property
    def kind(self) -> str:
        """How a slot that can't be booked is drawn: past, booked by someone, yours, or unavailable."""
        if self.why == "past":
            return "past"
        if self.why == "booked":
            return "booked"
        if self.why == "you have a booking then":
            return "mine"
        return "unavailable" if self.why else ""


@dataclass
class WorkstationDay:
    workstation: Workstation
    status: str
    slots: list[Slot] = field(default_factory=list)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, start + timedelta(days=1)


def attempts_left(
    *, expert: User, environments: list[Environment], now: datetime | None = None
) -> dict[int, int | None]:
    """Per environment (by pk), how many more attempts the expert may book there under its
    attempts-per-expert limit; None where it sets none. One query for all of them."""
    now = now or timezone.now()
    counted = dict(
        Reservation.objects.filter(expert=expert, environment__in=environments)
        .filter(expert_attempts_counted_q(now=now))
        .values_list("environment")
        .annotate(n=Count("pk"))
    )
    return {
        env.pk: max(0, env.attempts_per_expert - counted.get(env.pk, 0)) if env.attempts_per_expert else None
        for env in environments
    }


def eligible_workstations(environment: Environment) -> list[Workstation]:
    return [ws for ws in Workstation.objects.all() if workstation_meets(ws, environment) is None]


def live_reservations(start: datetime, end: datetime) -> QuerySet[Reservation]:
    return Reservation.objects.filter(cancelled_at__isnull=True, starts_at__lt=end, ends_at__gt=start)


def free_slots(
    *, environment: Environment, day: date, expert: User | None = None, now: datetime | None = None
) -> list[WorkstationDay]:
    """Hourly start times on `day` for each workstation that can host `environment`.

    A slot is free when, for its whole length (time limit + set-up), enough of the workstation's GPUs
    are free (in service, held by no live reservation; an environment that needs no GPU needs the
    whole host), it overlaps none of the expert's own reservations, starts in the future, and the
    workstation is bookable. Each slot says how many GPUs it has free.
    """
    now = now or timezone.now()
    length = reservation_min_length(environment)
    day_start, day_end = day_bounds(day)
    workstations = eligible_workstations(environment)
    busy = list(live_reservations(day_start, day_end + length).filter(workstation__in=workstations))
    mine = list(live_reservations(day_start, day_end + length).filter(expert=expert)) if expert else []
    broken = gpus_out_of_service(workstations)
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
        # A slot given back this minute (an attempt ended early) is free from its end, not from the
        # minute's turn: "now" starts there, to the second, so the next expert needn't wait.
        freed = [r.ends_at for r in taken if this_minute < r.ends_at <= now]
        for start in starts:
            is_now = start == this_minute
            if is_now and freed:
                # To the whole second after it: the booking form carries seconds, not microseconds.
                start = max(freed) + timedelta(microseconds=(1_000_000 - max(freed).microsecond) % 1_000_000)
            end = start + length
            holders = [r for r in taken if r.starts_at < end and r.ends_at > start]
            free: int | None = None
            if environment.gpus_min:
                free = len(gpus_free(workstation=ws, holders=holders, out_of_service=broken.get(ws.pk, ())))
            why = ""
            if start < now and not is_now:
                why = "past"
            elif (refusal := ws.booking_refusal(now)) is not None:
                why = refusal
            elif holders if free is None else free < environment.gpus_min:
                why = "booked"
            elif any(r.starts_at < end and r.ends_at > start for r in mine):
                why = "you have a booking then"
            row.slots.append(Slot(starts_at=start, ends_at=end, free=not why, why=why, is_now=is_now, gpus_free=free))
        result.append(row)
    return result


@dataclass
class GridCell:
    hour: datetime
    reservation: Reservation | None
    is_start: bool


@dataclass
class GridLane:
    """One GPU of a workstation across the day (or the whole host, for a workstation without GPUs)."""

    label: str
    cells: list[GridCell]
    problem: str = ""


@dataclass
class GridRow:
    workstation: Workstation
    status: str
    lanes: list[GridLane]


def schedule_grid(*, day: date, now: datetime | None = None) -> tuple[list[datetime], list[GridRow]]:
    """Workstations × GPU lanes × hours of `day`; each cell holds the live reservation that holds that
    GPU in that hour (one that holds the whole host is in every lane of its workstation)."""
    now = now or timezone.now()
    day_start, day_end = day_bounds(day)
    hours = [day_start + timedelta(hours=h) for h in range(24)]
    reservations = list(
        live_reservations(day_start, day_end).select_related("expert", "environment", "attempt").order_by("starts_at")
    )
    broken = gpus_out_of_service()
    rows = []
    for ws in Workstation.objects.all():
        on_host = [r for r in reservations if r.workstation_id == ws.pk]
        lanes = []
        for index in range(ws.gpu_count) if ws.gpu_count else [None]:
            holding = [r for r in on_host if index is None or r.holds_gpu(index)]
            cells = []
            for hour in hours:
                covering = next(
                    (r for r in holding if r.starts_at < hour + timedelta(hours=1) and r.ends_at > hour), None
                )
                is_start = covering is not None and (covering.starts_at >= hour or hour == day_start)
                cells.append(GridCell(hour=hour, reservation=covering, is_start=is_start))
            if index is None:
                lanes.append(GridLane(label="host", cells=cells))
            else:
                lanes.append(GridLane(label=f"GPU {index}", cells=cells, problem=broken.get(ws.pk, {}).get(index, "")))
        rows.append(GridRow(workstation=ws, status=ws.effective_status(now), lanes=lanes))
    return hours, rows


@dataclass(frozen=True)
class ClockState:
    state: str  # running | paused | ended (a running attempt being prepared is "running", its clock not started)
    elapsed_seconds: float
    remaining_seconds: float | None
    time_limit_seconds: float
    deadline: datetime | None
    hard_stop_at: datetime | None
    pause_reason: str | None
    server_now: datetime
    clock_started_at: datetime | None = None
    preparing: bool = False  # the environment is being prepared: the clock hasn't started

    @property
    def page_state(self) -> str:
        """What the attempt page's bar says and counts by: "preparing" holds the countdown still."""
        return "preparing" if self.preparing else self.state


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
        clock_started_at=attempt.clock_start,
        preparing=attempt.is_preparing,
    )


def attempts_visible_to(user: User | AnonymousUser) -> QuerySet[Attempt]:
    """The attempts `user` may see: their own, or all of them for an admin.

    Callers answer 404 for anything outside it, so attempt ids don't leak.
    """
    if not user.is_authenticated:
        return Attempt.objects.none()
    return Attempt.objects.all() if roles.is_admin(user) else Attempt.objects.filter(user_id=user.pk)


def attempts_for(user: User) -> QuerySet[Attempt]:
    return (
        Attempt.objects.filter(user=user)
        .select_related("environment", "workstation", "reservation")
        .prefetch_related("pauses")
    )


def reservations_for(user: User) -> QuerySet[Reservation]:
    return (
        Reservation.objects.filter(expert=user)
        .select_related("environment", "workstation", "attempt")
        .order_by("-starts_at")
    )


# --- the attempt's sandbox on its workstation ---------------------------------------------------


def workstation_backend(workstation: Workstation | None) -> Backend:
    """The backend that reaches `workstation` (None: this machine)."""
    if workstation is None:
        return backend_for(Workstation.Backend.LOCAL)
    return backend_for(workstation.backend, host=workstation.host, port=workstation.ssh_port, user=workstation.ssh_user)


def attempt_sandbox_request(attempt: Attempt) -> SandboxRequest:
    """What the workstation needs to build the attempt's sandbox: its GPUs, share, network and proxies."""
    environment = attempt.environment
    reservation = attempt.reservation
    workstation = attempt.workstation
    gpus = (
        tuple(reservation.gpus) if reservation is not None and reservation.gpus else tuple(range(environment.gpus_min))
    )
    task = (
        getattr(environment, "task_standard", None) if environment.source == Environment.Source.TASK_STANDARD else None
    )
    network = "host" if task is not None and "full_internet" in (task.permissions or []) else "none"
    bridges = tuple(
        (int(port), str(path)) for port, path in settings.SANDBOX_ENVIRONMENT_BRIDGES.get(environment.slug, [])
    )
    # The environment's model through the attempt's relay (graders.services.model_calls); only in a
    # sandbox with its own loopback, where the port can't meet another attempt's (no package read else).
    package = packages.find(environment.slug) if network == "none" else None
    offers_model = package is not None and bool(package.expert_model_key)
    return SandboxRequest(
        attempt_id=attempt.pk,
        gpus=gpus,
        host_gpu_count=workstation.gpu_count if workstation is not None else 0,
        cpus=environment.cpus,
        memory_gb=float(environment.memory_gb),
        network=network,
        bridges=bridges,
        model_port=settings.SANDBOX_MODEL_PORT if offers_model else 0,
    )


def attempt_sandbox_control(attempt_id: int) -> dict[str, Any]:
    """The server's word to the workstation on the attempt's sandbox: paused or not, the deadline, ended.

    Versioned by the moment it was read, so a later word always wins where two arrive out of order.
    """
    attempt = Attempt.objects.prefetch_related("pauses").get(pk=attempt_id)
    pause = attempt.open_pause() if attempt.is_running else None
    deadline = attempt.deadline() if attempt.is_running else None
    # While the environment is prepared the expert's processes are held, as in a pause: nothing counts
    # yet, so nothing may be done yet (RE-Bench's agents began with the environment ready).
    paused = pause.reason if pause is not None else ("preparing" if attempt.is_preparing else None)
    return {
        "version": time_module.time(),
        "paused": paused,
        "deadline": deadline.timestamp() if deadline is not None else None,
        "hard_stop": attempt.hard_stop_at.timestamp() if attempt.hard_stop_at is not None else None,
        "ended": not attempt.is_running,
        "break_background": settings.SANDBOX_BREAK_BACKGROUND_WORK,
        # Who may log in over SSH: nobody while it is paused, preparing or over.
        "ssh_keys": attempt_ssh_keys(attempt) if attempt.is_running and paused is None else [],
        # Renewed while the server hears the workstation (trials.services.outages); past it, the
        # sandbox stops by itself as the server pauses the attempt for the outage.
        "lease_until": time_module.time() + settings.WORKSTATION_OFFLINE_AFTER.total_seconds(),
    }


def attempt_ssh_keys(attempt: Attempt) -> list[str]:
    """The public keys that open the attempt over SSH: its expert's account keys and its own short-lived ones."""
    if attempt.user_id is None:  # an agent's run: nobody logs in
        return []
    keys = SSHKey.objects.filter(user_id=attempt.user_id).filter(Q(attempt__isnull=True) | Q(attempt=attempt))
    return list(keys.order_by("pk").values_list("public_key", flat=True))


def attempt_ssh_command(attempt: Attempt) -> dict[str, str]:
    """What the attempt page shows for SSH: the login, the host and the commands to copy."""
    from workstation.sandbox.ssh_gate import TUNNEL_COMMAND
    from workstation.users import attempt_user_name

    workstation = attempt.workstation
    host = settings.SSH_ACCESS_HOST or (workstation.host if workstation is not None and workstation.host else "")
    host = host or "localhost"
    login = attempt_user_name(attempt.pk)
    port = f" -p {settings.SSH_ACCESS_PORT}" if settings.SSH_ACCESS_PORT != 22 else ""
    jump = settings.SSH_ACCESS_PROXY_JUMP
    name = f"rebench-attempt-{attempt.pk}"
    vscode = f"{name}-sandbox" if settings.SSH_ACCESS_TUNNEL else ""
    return {
        "login": login,
        "host": host,
        "command": f"ssh{port} {login}@{host}",
        "jump_command": f"ssh -J {jump}{port} {login}@{host}" if jump else "",
        "vscode_host": vscode,
        "config": "\n".join(
            [
                f"Host {name}",
                f"    HostName {host}",
                f"    User {login}",
                f"    Port {settings.SSH_ACCESS_PORT}",
                *([f"    ProxyJump {jump}"] if jump else []),
                *(
                    [
                        "",
                        "# VS Code Remote-SSH: connect to this one (a second hop, run inside the sandbox).",
                        f"Host {vscode}",
                        f"    User {login}",
                        # Whole, not through the alias above: VS Code may read another config file than ssh's.
                        f"    ProxyCommand ssh -T{port}{f' -J {jump}' if jump else ''} {login}@{host} {TUNNEL_COMMAND}",
                        f"    HostKeyAlias {vscode}",
                        "    StrictHostKeyChecking accept-new",
                    ]
                    if vscode
                    else []
                ),
            ]
        ),
    }


FROZEN_MESSAGES = {
    "break": "Your processes are paused for the break: they continue when you resume.",
    "preparing": "The environment is being prepared: your shell runs once the starting solution is scored and"
    " the clock starts.",
    "scoring": "Your processes are paused while the scorer runs; the clock is stopped.",
    "technical": "An admin paused the attempt for a technical problem: your processes are paused.",
    "admin": "An admin paused the attempt: your processes are paused.",
    "outage": "The workstation stopped answering: the clock is paused and your processes there are held;"
    " your shell and files are kept, and everything goes on when it is back.",
    "deadline": "The time is up: your processes are frozen and the final score is taken from this state.",
    "ended": "The attempt has ended: your processes are frozen and the final score is taken from this state.",
}


# Past this, a workspace still not ready is worth a word on the page (fix_embedding's start takes ~25 s).
PREPARING_SLOW_SECONDS = 180


def attempt_preparing(attempt: Attempt) -> str:
    """Which step of preparing its environment a started attempt is at, its clock not started yet:
    "workspace" (copied in, the start step run), "scoring" (the starting solution), "failed" (the
    last try failed: see preparation_error); "" once the clock runs, once it ended, or for a run
    entered by a harness or an import."""
    if not attempt.is_preparing:
        return ""
    if attempt.preparation_error:
        return "failed"
    if attempt.workspace_ready_at is None:
        return "workspace"
    return "scoring"


def attempt_live_marker(attempt: Attempt, clock: ClockState, *, scoring: str) -> str:
    """A short digest of everything the attempt page shows live; it changes exactly when the page should.

    `attempt` has `pauses` and `notes` prefetched; `scoring` is the grading side's own marker.
    """
    pauses = [(p.pk, p.ended_at) for p in attempt.pauses.all()]
    parts = (
        clock.state,
        clock.pause_reason,
        attempt.end_reason,
        attempt.workspace_ready_at,
        attempt.clock_started_at,
        attempt.preparation_failed_at,
        attempt_frozen_reason(attempt, clock.server_now),
        attempt_workstation_silence(attempt, clock.server_now) is not None,
        len(attempt.notes.all()),
        pauses,
        attempt.excluded_reason,
        scoring,
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def attempt_workstation_silence(attempt: Attempt, now: datetime | None = None) -> datetime | None:
    """When a running attempt's workstation was last heard, if that was over WORKSTATION_SILENT_AFTER
    ago (the page says it isn't answering); None while it answers."""
    workstation = attempt.workstation if attempt.is_local and attempt.is_running else None
    if workstation is None or workstation.last_heartbeat_at is None:
        return None
    now = now or timezone.now()
    if now - workstation.last_heartbeat_at <= settings.WORKSTATION_SILENT_AFTER:
        return None
    return workstation.last_heartbeat_at


def attempt_frozen_reason(attempt: Attempt, now: datetime | None = None) -> str | None:
    """Why the attempt's processes are frozen now (the same rule its workstation applies), or None."""
    if not attempt.is_local or attempt.workstation_id is None:
        return None
    if not attempt.is_running:
        return "ended"
    now = now or timezone.now()
    deadline = attempt.deadline()
    if deadline is not None and deadline <= now:
        return "deadline"
    if attempt.is_preparing:
        return "preparing"
    pause = attempt.open_pause()
    if pause is None or (pause.reason == "break" and settings.SANDBOX_BREAK_BACKGROUND_WORK):
        return None
    if pause.reason == Pause.Reason.TECHNICAL and pause.created_by_id is None:
        return "outage"
    return pause.reason


RESERVATION_VIEWS = {
    "live": "now and upcoming",
    "past": "past",
    "cancelled": "cancelled",
    "all": "all",
}


def reservations_for_admin(
    *, view: str = "live", environment: str = "", q: str = "", now: datetime | None = None
) -> QuerySet[Reservation]:
    """Reservations for the admin's list: `live` (not cancelled, not over) soonest first, the others
    newest first; `q` matches the expert or the workstation."""
    now = now or timezone.now()
    reservations = Reservation.objects.select_related("expert", "environment", "workstation", "attempt")
    if view == "live":
        reservations = reservations.filter(cancelled_at__isnull=True, ends_at__gt=now).order_by("starts_at", "pk")
    elif view == "past":
        reservations = reservations.filter(cancelled_at__isnull=True, ends_at__lte=now).order_by("-starts_at", "-pk")
    elif view == "cancelled":
        reservations = reservations.filter(cancelled_at__isnull=False).order_by("-starts_at", "-pk")
    else:
        reservations = reservations.order_by("-starts_at", "-pk")
    if environment:
        reservations = reservations.filter(environment__slug=environment)
    if q:
        reservations = reservations.filter(Q(expert__username__icontains=q) | Q(workstation__name__icontains=q))
    return reservations


def attempts_for_admin(*, status: str = "", source: str = "", environment: str = "", q: str = "") -> QuerySet[Attempt]:
    """Attempts and runs for the admin's list, newest first; `q` matches the participant or agent."""
    attempts = Attempt.objects.select_related("environment", "workstation", "user").prefetch_related("pauses")
    if status:
        attempts = attempts.filter(status=status)
    if source:
        attempts = attempts.filter(source=source)
    if environment:
        attempts = attempts.filter(environment__slug=environment)
    if q:
        attempts = attempts.filter(
            Q(user__username__icontains=q)
            | Q(participant_label__icontains=q)
            | Q(agent_name__icontains=q)
            | Q(agent_model__icontains=q)
        )
    return attempts.order_by("-started_at", "-pk")
