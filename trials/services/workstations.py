"""Workstations: registering one, its status, its edits and its heartbeat."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from rebench_site.errors import ServiceError
from trials.models import Gpu, Reservation, Workstation


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
