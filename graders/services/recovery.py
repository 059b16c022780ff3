"""A job whose worker went silent: its heartbeats, the sweep that sends it out again or closes it, an admin's close."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record
from graders.models import ScoreLogEntry, ScoringJob
from graders.services._shared import UNFINISHED, _queue
from graders.services.execution import _job_record
from rebench_site import roles
from rebench_site.errors import NotAllowed, ServiceError
from trials import services as trials_services

log = logging.getLogger(__name__)


LOST_MESSAGE = (
    "Not scored: the worker running this job stopped (killed, or its host lost) and no worker finished it. "
    "Score again, or ask an admin to re-run it."
)


def _is_lost(job: ScoringJob, now: datetime) -> bool:
    """A running job whose worker has been silent for SCORING_LOST_AFTER_SECONDS, or one sent out
    again after that (its scoring pause still open) that no worker has picked up in twice that."""
    last = job.heartbeat_at or job.started_at
    if last is None or job.status not in UNFINISHED:
        return False  # never begun: waiting for a worker, the clock running
    silent = (now - last).total_seconds()
    if job.status == ScoringJob.Status.RUNNING:
        return silent > settings.SCORING_LOST_AFTER_SECONDS
    return silent > 2 * settings.SCORING_LOST_AFTER_SECONDS


def _close_lost(job: ScoringJob, now: datetime, *, why: str, closed_by: str = "") -> ScoreLogEntry:
    """With the job locked and unfinished: its one entry, invalid and marked lost; the clock runs again."""
    details: dict[str, Any] = {"lost": True, "deliveries": job.deliveries}
    if closed_by:
        details["closed_by"] = closed_by
    return _job_record(job, score=None, message=why, details=details, status=ScoringJob.Status.FAILED, now=now)


def _recover(job: ScoringJob, now: datetime) -> str:
    """With a lost job locked: send it out again while it has deliveries left, else close it. Says which."""
    if job.status == ScoringJob.Status.RUNNING and job.deliveries < settings.SCORING_MAX_DELIVERIES:
        # Queued again (the clock stays stopped: the workspace is as it was when scoring began).
        job.status = ScoringJob.Status.QUEUED
        job.heartbeat_at = now  # from now, a worker has 2 x LOST_AFTER to pick it up
        job.save(update_fields=["status", "heartbeat_at"])
        _queue(job)
        log.warning("scoring job %s: its worker went silent; queued again", job.pk)
        return "queued"
    _close_lost(job, now, why=LOST_MESSAGE)
    log.warning("scoring job %s: lost after %s deliveries; closed", job.pk, job.deliveries)
    return "closed"


SILENT_HOST_MESSAGE = (
    "Not scored: {workstation} stopped answering (last heard {heard}) before this job began, and it waited "
    "{minutes} minutes. The workspace is on that host, so nothing else can score it: score again once it is back."
)


def _close_waiting_on_silent_hosts(now: datetime) -> dict[str, str]:
    """Jobs never begun, queued over SCORING_QUEUED_ON_SILENT_HOST_MINUTES for a workstation that is
    silent: closed with an entry that says so (the clock was paused for the outage meanwhile). One
    that a worker picks up later finds itself finished and does nothing."""
    waited = timedelta(minutes=settings.SCORING_QUEUED_ON_SILENT_HOST_MINUTES)
    candidates = ScoringJob.objects.filter(
        status=ScoringJob.Status.QUEUED, started_at__isnull=True, created_at__lt=now - waited
    ).select_related("attempt__workstation")
    done: dict[str, str] = {}
    for candidate in candidates:
        workstation = candidate.attempt.workstation
        heard = trials_services.workstation_silent_since(workstation, now) if workstation is not None else None
        if workstation is None or heard is None:
            continue  # its host answers: the job waits for its turn
        with transaction.atomic():
            job = ScoringJob.objects.select_for_update().filter(pk=candidate.pk).first()
            if job is None or job.status != ScoringJob.Status.QUEUED or job.started_at is not None:
                continue
            why = SILENT_HOST_MESSAGE.format(
                workstation=workstation.name,
                heard=f"{timezone.localtime(heard):%Y-%m-%d %H:%M:%S %Z}",
                minutes=int((now - job.created_at).total_seconds() // 60),
            )
            _close_lost(job, now, why=why)
            log.warning("scoring job %s: closed, its workstation %s is silent", job.pk, workstation.name)
            done[str(job.pk)] = "closed"
    return done


def scoring_jobs_recover(*, now: datetime | None = None) -> dict[str, str]:
    """Every running job whose worker went silent is sent out again or closed (the beat task's sweep).

    Whatever the broker does with a dead worker's message (Redis returns it after its visibility
    timeout, RabbitMQ when the connection drops, the embedded broker never), the job ends: run
    again, or closed with one entry. A message that comes back later finds the job running
    elsewhere or finished, and does nothing.
    """
    now = now or timezone.now()
    horizon = now - timedelta(seconds=settings.SCORING_LOST_AFTER_SECONDS)
    candidates = ScoringJob.objects.filter(status__in=UNFINISHED, started_at__isnull=False).filter(
        Q(heartbeat_at__lt=horizon) | Q(heartbeat_at__isnull=True, started_at__lt=horizon)
    )
    done: dict[str, str] = {}
    for job_id in candidates.values_list("pk", flat=True):
        with transaction.atomic():
            job = ScoringJob.objects.select_for_update().filter(pk=job_id).first()
            if job is not None and _is_lost(job, now):
                done[str(job_id)] = _recover(job, now)
    done.update(_close_waiting_on_silent_hosts(now))
    return done


def scoring_job_heartbeat(*, job_id: str, now: datetime | None = None) -> bool:
    """The worker running the job is alive; False once the job is no longer running (closed or requeued)."""
    return bool(
        ScoringJob.objects.filter(pk=job_id, status=ScoringJob.Status.RUNNING).update(
            heartbeat_at=now or timezone.now()
        )
    )


@transaction.atomic
def scoring_job_close(*, job: ScoringJob, by: User, now: datetime | None = None) -> ScoreLogEntry | None:
    """An admin ends a job that hasn't finished (a stuck worker): one invalid entry, marked lost; the clock runs."""
    if not roles.is_admin(by):
        raise NotAllowed("Only admins close scoring jobs.")
    job = ScoringJob.objects.select_for_update().get(pk=job.pk)
    if job.status not in UNFINISHED:
        raise ServiceError("That job has finished already.", field="job")
    before = {"status": job.status, "deliveries": job.deliveries}
    entry = _close_lost(job, now or timezone.now(), why=f"Closed by {by} before it finished.", closed_by=str(by))
    audit_record(
        actor=by,
        action="scoring.close",
        subject=f"scoring job {job.pk}",
        attempt_id=job.attempt_id,
        before=before,
        after={"status": ScoringJob.Status.FAILED, "entry": entry.pk},
        at=entry.scored_at,
    )
    return entry
