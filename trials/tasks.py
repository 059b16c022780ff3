"""Celery tasks for trials: thin wrappers over services."""

from __future__ import annotations

import logging

from celery import shared_task

from trials import services
from trials.models import Workstation
from workstation.backends import BackendError

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def attempt_enforce_deadline(attempt_id: int) -> str:
    """Scheduled (eta) for the attempt's deadline; re-checks, so a stale schedule is harmless."""
    attempt = services.attempt_enforce_deadline(attempt_id=attempt_id)
    if attempt is None:
        return "missing"
    return attempt.status


@shared_task(
    acks_late=True,
    autoretry_for=(BackendError,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=30,
)
def attempt_terminals_finish(attempt_id: int) -> int:
    """After an attempt ends: its terminal holders end on the workstation (retried while it is unreachable)
    and its recordings are merged into storage."""
    return services.terminals_finish(attempt_id=attempt_id)


@shared_task(
    acks_late=True,
    autoretry_for=(BackendError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=20,
)
def attempt_sandbox_control(attempt_id: int) -> dict[str, object] | None:
    """A pause, resume, new deadline or end: the workstation freezes or thaws the attempt's sandbox.

    Reads the attempt's state when it runs, so a late or repeated message sends the latest word.
    """
    return services.attempt_sandbox_control_send(attempt_id=attempt_id)


@shared_task(acks_late=True)
def attempts_sweep_deadlines() -> list[int]:
    """Periodic safety net for lost or early-delivered deadline tasks."""
    ended = services.attempts_end_overdue()
    if ended:
        log.info("sweep ended attempts %s", ended)
    return ended


@shared_task
def workstations_ping() -> int:
    """Send a heartbeat task to every workstation's queue; a dead worker lets its message expire."""
    from workstation.agent.tasks import workstation_heartbeat

    count = 0
    for ws in Workstation.objects.exclude(status=Workstation.Status.OFFLINE).only("pk", "queue_name"):
        workstation_heartbeat.apply_async(args=(ws.pk,), queue=ws.queue_name, expires=60)
        count += 1
    return count


@shared_task
def workstations_watch() -> dict[str, int]:
    """The beat's outage sweep: attempts on silent workstations pause, on answering ones resume or
    have their sandbox's lease renewed (trials.services.outages)."""
    return services.workstations_watch()
