"""Workstations: registering one, its status, its edits and its heartbeat."""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from rebench_site.errors import ServiceError
from trials.models import Gpu, Reservation, Workstation

# Gpu.problem's length.
PROBLEM_MAX_CHARS = 200


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
    _gpus_sync(workstation)
    return workstation


def _gpus_sync(workstation: Workstation, *, now: datetime | None = None) -> None:
    """One Gpu row per index below the workstation's GPU count. Fewer GPUs than a live or coming
    booking holds is refused (ServiceError on gpu_count): reservations are never left holding a GPU
    that isn't there."""
    count = workstation.gpu_count
    now = now or timezone.now()
    holding = Reservation.objects.filter(workstation=workstation, cancelled_at__isnull=True, ends_at__gt=now)
    for reservation in holding:
        if reservation.gpus and max(reservation.gpus) >= count:
            raise ServiceError(
                f"Reservation {reservation.pk} holds GPU {max(reservation.gpus)} until "
                f"{timezone.localtime(reservation.ends_at):%a %d %b %H:%M}; move or cancel it first.",
                field="gpu_count",
            )
    Gpu.objects.filter(workstation=workstation, index__gte=count).delete()
    # What the admin says the GPUs are, until the heartbeat reports what they are.
    Gpu.objects.filter(workstation=workstation, reported_at__isnull=True).update(model=workstation.gpu_model)
    Gpu.objects.bulk_create(
        [Gpu(workstation=workstation, index=index, model=workstation.gpu_model) for index in range(count)],
        ignore_conflicts=True,
    )


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
        if "gpu_count" in changes or "gpu_model" in changes:
            # The save above holds the workstation's row lock, which bookings take first: none can
            # pick a GPU being removed meanwhile.
            _gpus_sync(workstation)
    return workstation


@transaction.atomic
def workstation_record_heartbeat(
    *,
    workstation_id: int,
    sandbox_problems: list[str] | None = None,
    inventory: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> bool:
    """Called by the heartbeat task on the workstation's own queue, with its answer to "can you sandbox?"
    and its inventory (`workstation.inventory.report()`: GPUs, disk, notes; the sandbox's answer too).

    False if the workstation no longer exists. A workstation that reports problems can't be booked;
    a GPU with uncorrected ECC errors, or one nvidia-smi didn't list, gets a problem and isn't given
    out, until a heartbeat finds it healthy again. A problem an admin set stays until an admin clears it.
    """
    at = at or timezone.now()
    # The row lock bookings take first: no booking picks a GPU while its problem is being decided.
    workstation = Workstation.objects.select_for_update().filter(pk=workstation_id).first()
    if workstation is None:
        return False
    if sandbox_problems is None and inventory is not None and isinstance(inventory.get("sandbox_problems"), list):
        sandbox_problems = [str(problem) for problem in inventory["sandbox_problems"]]
    changes: dict[str, object] = {"last_heartbeat_at": at}
    if sandbox_problems is not None:
        changes.update(sandbox_problems=list(sandbox_problems), sandbox_checked_at=at)
    if inventory is not None:
        # A host's report is read as data of any shape: what isn't of the expected kind counts as unknown.
        reported_notes = inventory.get("notes")
        notes = [str(note)[:500] for note in reported_notes if note][:20] if isinstance(reported_notes, list) else []
        disk = inventory.get("disk")
        disk = disk if isinstance(disk, Mapping) else {}
        changes.update(
            disk_free_bytes=_whole(disk.get("free_bytes"), low=0, high=2**63 - 1),
            disk_total_bytes=_whole(disk.get("total_bytes"), low=0, high=2**63 - 1),
        )
        gpus = inventory.get("gpus")
        if isinstance(gpus, list):
            notes += _gpus_record(workstation, [gpu for gpu in gpus if isinstance(gpu, Mapping)], at=at)
        changes["inventory_notes"] = notes
    Workstation.objects.filter(pk=workstation.pk).update(**changes)
    return True


def _whole(value: object, *, low: int, high: int) -> int | None:
    """An integer the column can hold, or None (unknown) for anything else a host might send."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    number = int(value)
    return number if low <= number <= high else None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _ecc_problem(errors: int | None) -> str:
    if not errors:
        return ""
    return f"{errors} uncorrected ECC error{'' if errors == 1 else 's'}"


def _gpus_record(workstation: Workstation, reported: list[Mapping[str, Any]], *, at: datetime) -> list[str]:
    """Write what nvidia-smi said of each GPU onto its row and decide the automatic problems; returns notes."""
    by_index: dict[int, Mapping[str, Any]] = {}
    for gpu in reported:
        index = _whole(gpu.get("index"), low=0, high=32767)
        if index is not None:
            by_index[index] = gpu
    rows = {gpu.index: gpu for gpu in Gpu.objects.filter(workstation=workstation)}
    changed = []
    for index in range(workstation.gpu_count):
        row = rows.get(index) or Gpu.objects.create(workstation=workstation, index=index, model=workstation.gpu_model)
        seen = by_index.get(index)
        if seen is None:
            automatic = "not reported by nvidia-smi"
            row.foreign_processes = []
        else:
            row.model = str(seen.get("model") or row.model)[:60]
            row.uuid = str(seen.get("uuid") or "")[:64]
            row.memory_mb = _whole(seen.get("memory_mb"), low=0, high=2**31 - 1)
            row.temperature_c = _whole(seen.get("temperature_c"), low=-32768, high=32767)
            row.ecc_errors = _whole(seen.get("ecc_errors"), low=0, high=2**31 - 1)
            row.foreign_processes = [
                {
                    "pid": _whole(p.get("pid"), low=0, high=2**31),
                    "user": str(p.get("user", ""))[:64],
                    "command": str(p.get("command", ""))[:200],
                }
                for p in _list(seen.get("foreign_processes"))
                if isinstance(p, Mapping)
            ][:50]
            row.reported_at = at
            automatic = _ecc_problem(row.ecc_errors)
        if not row.problem_set_by_admin:
            row.problem = automatic
        changed.append(row)
    Gpu.objects.bulk_update(
        changed,
        ["model", "uuid", "memory_mb", "temperature_c", "ecc_errors", "foreign_processes", "problem", "reported_at"],
    )
    beyond = sorted(index for index in by_index if index >= workstation.gpu_count)
    if beyond:
        return [
            f"nvidia-smi also reports GPU {', '.join(map(str, beyond))}, beyond the {workstation.gpu_count} "
            "declared: raise the GPU count to book it"
        ]
    return []


@transaction.atomic
def gpu_set_problem(*, gpu: Gpu, problem: str, by: User | None = None, note: str = "") -> Gpu:
    """An admin takes a GPU out of service (with the reason shown to admins) or puts it back ("").

    An admin's problem outlasts every heartbeat; clearing it hands the GPU back to the heartbeat,
    which sets its own problem again at once if the GPU is still unhealthy.
    """
    problem = problem.strip()
    if len(problem) > PROBLEM_MAX_CHARS:
        raise ServiceError(
            f"Problem: at most {PROBLEM_MAX_CHARS} characters (this one has {len(problem)}).", field="problem"
        )
    gpu = Gpu.objects.select_for_update().select_related("workstation").get(pk=gpu.pk)
    before = {"problem": gpu.problem, "set_by_admin": gpu.problem_set_by_admin}
    # Cleared, the GPU keeps what the heartbeat knows against it (its ECC count) until the next one.
    gpu.problem = problem or _ecc_problem(gpu.ecc_errors)
    gpu.problem_set_by_admin = bool(problem)
    gpu.save(update_fields=["problem", "problem_set_by_admin"])
    audit_record(
        actor=by,
        action="gpu.problem_set" if problem else "gpu.problem_clear",
        subject=f"{gpu.workstation.name} GPU {gpu.index}",
        before=before,
        after={"problem": gpu.problem, "set_by_admin": gpu.problem_set_by_admin},
        note=note,
    )
    return gpu


def workstation_agent_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def workstation_agent_token_issue(*, workstation: Workstation, by: User | None) -> str:
    """A new token for the workstation's agent, returned once (only its hash is kept); the old one stops working."""
    token = secrets.token_urlsafe(32)
    digest, now = workstation_agent_token_hash(token), timezone.now()
    had = Workstation.objects.filter(pk=workstation.pk).exclude(agent_token_hash="").exists()
    Workstation.objects.filter(pk=workstation.pk).update(agent_token_hash=digest, agent_token_issued_at=now)
    workstation.agent_token_hash, workstation.agent_token_issued_at = digest, now
    audit_record(
        actor=by,
        action="workstation.agent_token_issue",
        subject=f"workstation {workstation.name}",
        before={"token": "issued" if had else "none"},
        after={"token": "issued"},
    )
    return token


@transaction.atomic
def workstation_agent_token_revoke(*, workstation: Workstation, by: User | None) -> Workstation:
    """The agent's token stops working at once: its calls are refused until a new one is issued."""
    Workstation.objects.filter(pk=workstation.pk).update(agent_token_hash="", agent_token_issued_at=None)
    workstation.agent_token_hash, workstation.agent_token_issued_at = "", None
    audit_record(
        actor=by,
        action="workstation.agent_token_revoke",
        subject=f"workstation {workstation.name}",
        before={"token": "issued"},
        after={"token": "none"},
    )
    return workstation
