"""Scoring jobs asked for and begun: the expert's request, the start and final runs, an admin's re-run,
and a worker's pick-up."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from environments import packages
from graders.models import ScoringJob
from graders.services._shared import UNFINISHED, _queue, _queue_name
from graders.services.execution import _job_record
from graders.services.recovery import LOST_MESSAGE, _close_lost, _is_lost, _recover
from graders.services.workspaces import attempt_user_retire_queue
from rebench_site import roles
from rebench_site.errors import NotAllowed, ServiceError
from trials import services as trials_services
from trials.models import Attempt, Pause

log = logging.getLogger(__name__)


@trials_services.ends_overdue_attempt_first
@transaction.atomic
def scoring_job_request(*, attempt: Attempt, by: User, now: datetime | None = None) -> ScoringJob:
    """Queue a scoring run (Score button, `task score`, the API); one unfinished job per attempt at a time.

    An attempt past its deadline has been ended there (by the decorator) and is refused here.
    """
    now = now or timezone.now()
    attempt = (
        Attempt.objects.select_for_update(of=("self",)).select_related("environment", "workstation").get(pk=attempt.pk)
    )
    if attempt.user_id != by.pk and not roles.is_admin(by):
        raise NotAllowed("That attempt is not yours.")
    if not attempt.is_running:
        why = attempt.get_end_reason_display()
        raise ServiceError(f"The attempt has ended ({why}); it is scored once, at the end.", field="attempt")
    if attempt.is_preparing:
        # Work done before the clock starts would be time nobody counted: scores come from the clock's start.
        raise ServiceError(
            "The environment is still being prepared: scoring opens when the clock starts.", field="attempt"
        )
    deadline = attempt.deadline()
    if attempt.is_local and deadline is not None and deadline <= now:
        # Its time ran out between the check before this write and the lock: refuse all the same.
        raise ServiceError("The attempt's time is up; it is scored once, at the end.", field="attempt")
    if not attempt.is_local:
        raise ServiceError("This run is scored by the harness that runs it, not on this site.", field="attempt")
    package = packages.find(attempt.environment.slug)
    if package is None:
        raise ServiceError(f"{attempt.environment.slug} has no scorer on this site yet.", field="attempt")
    if not package.accepts_intermediate:
        raise ServiceError("This task is scored once, when the attempt ends.", field="attempt")
    pending = ScoringJob.objects.select_for_update().filter(attempt=attempt, status__in=UNFINISHED).first()
    if pending is not None and not (_is_lost(pending, now) and _recover(pending, now) == "closed"):
        return pending  # queued, running, or just sent out again
    job = ScoringJob.objects.create(attempt=attempt, queue_name=_queue_name(attempt), requested_by=by)
    _queue(job)
    return job


@transaction.atomic
def scoring_job_queue_start(*, attempt_id: int, now: datetime | None = None) -> ScoringJob | None:
    """The workspace is ready: score the starting solution, as RE-Bench does at start. The attempt's
    clock starts when that score is in (see _job_record).

    An environment with no starting score to take (no scorer on this site, or scored only at the end)
    is ready now: its clock starts here. Nothing is queued once the clock runs or the attempt has
    ended, nor while its starting solution is being scored or has been (a redelivered prepare task);
    after a failed try (a retried preparation) it is scored again.
    """
    attempt = (
        Attempt.objects.select_for_update(of=("self",)).select_related("environment", "workstation").get(pk=attempt_id)
    )
    if not attempt.is_preparing:
        return None
    package = packages.find(attempt.environment.slug)
    if package is None or not package.accepts_intermediate:
        trials_services.attempt_clock_start(attempt_id=attempt.pk, now=now)
        return None
    if (
        ScoringJob.objects.filter(attempt=attempt, kind=ScoringJob.Kind.START)
        .exclude(status=ScoringJob.Status.FAILED)
        .exists()
    ):
        return None
    job = ScoringJob.objects.create(attempt=attempt, kind=ScoringJob.Kind.START, queue_name=_queue_name(attempt))
    _queue(job)
    return job


@transaction.atomic
def scoring_job_queue_final(*, attempt_id: int) -> ScoringJob | None:
    """The end-of-attempt scoring run; at most one per attempt, whoever ends it and however often."""
    attempt = (
        Attempt.objects.select_for_update(of=("self",)).select_related("environment", "workstation").get(pk=attempt_id)
    )
    if attempt.is_running or packages.find(attempt.environment.slug) is None:
        return None
    if ScoringJob.objects.filter(attempt=attempt, kind=ScoringJob.Kind.FINAL).exists():
        return None
    job = ScoringJob.objects.create(attempt=attempt, kind=ScoringJob.Kind.FINAL, queue_name=_queue_name(attempt))
    _queue(job)
    return job


def queue_final_scoring(attempt: Attempt) -> None:
    """Called (after commit) when an attempt ends; never lets grading break the ending."""
    if not settings.GRADING_FINAL_SCORING:
        return
    try:
        scoring_job_queue_final(attempt_id=attempt.pk)
        if packages.find(attempt.environment.slug) is None:
            # No final scoring run will retire the attempt's user afterwards: retire it now.
            attempt_user_retire_queue(attempt)
    except Exception:  # the attempt has ended either way; an admin re-runs the scoring
        log.exception("could not queue the final scoring of attempt %s", attempt.pk)


@transaction.atomic
def scoring_job_rerun(*, job: ScoringJob, by: User) -> ScoringJob:
    if not roles.is_admin(by):
        raise NotAllowed("Only admins re-run scoring jobs.")
    job = ScoringJob.objects.select_for_update(of=("self",)).select_related("attempt__workstation").get(pk=job.pk)
    before = {"job": job.pk, "status": job.status}
    if job.status in UNFINISHED:
        # Stuck or not, the admin's word ends it: its one entry says so, and the re-run replaces it.
        _close_lost(job, timezone.now(), why=f"Closed by {by} to run it again.", closed_by=str(by))
    rerun = ScoringJob.objects.create(
        attempt=job.attempt, kind=job.kind, queue_name=_queue_name(job.attempt), requested_by=by, rerun_of=job
    )
    audit_record(
        actor=by,
        action="scoring.rerun",
        subject=f"scoring job {job.pk}",
        attempt_id=job.attempt_id,
        before=before,
        after={"rerun": rerun.pk},
    )
    _queue(rerun)
    return rerun


TOO_LATE_TO_SCORE = (
    "Not scored: no worker picked this job up before the attempt's deadline, and the workspace now holds "
    "work done after it. The final scoring run scores the workspace."
)


@transaction.atomic
def scoring_job_begin(*, job_id: str, now: datetime | None = None) -> ScoringJob | None:
    """A worker picked the job up: mark it running and stop the attempt's clock.

    None if it has finished already, or if it came too late to score: then it is finished here,
    with an entry that counts nothing (see _too_late_to_score).
    """
    now = now or timezone.now()
    job = ScoringJob.objects.select_for_update().filter(pk=job_id).first()
    if job is None or job.status in (ScoringJob.Status.DONE, ScoringJob.Status.FAILED):
        return None
    if job.status == ScoringJob.Status.RUNNING and not _is_lost(job, now):
        return None  # a second message for a job another worker is running (a redelivery beside a resend)
    if job.deliveries >= settings.SCORING_MAX_DELIVERIES:
        _close_lost(job, now, why=LOST_MESSAGE)
        return None
    if job.kind != ScoringJob.Kind.FINAL:
        # The worker may be the first thing to run since the deadline: it ends the attempt there.
        trials_services.attempt_end_if_overdue(attempt_id=job.attempt_id, now=now)
    job.status = ScoringJob.Status.RUNNING
    job.started_at = job.started_at or now
    job.heartbeat_at = now
    job.deliveries += 1
    job.save(update_fields=["status", "started_at", "heartbeat_at", "deliveries"])
    attempt = Attempt.objects.get(pk=job.attempt_id)
    if _too_late_to_score(job, attempt):
        _job_record(
            job,
            score=None,
            message=TOO_LATE_TO_SCORE,
            details={"not_scored": "picked up after the attempt's deadline"},
            status=ScoringJob.Status.FAILED,
            now=now,
        )
        return None
    # An admin's re-run scores a snapshot of the workspace as it is now, beside the expert's work:
    # it is not the expert's request, so it neither stops their clock nor freezes their processes.
    # The starting solution is scored before the clock starts: there is no clock to stop.
    if (
        job.rerun_of_id is None
        and attempt.is_running
        and not attempt.is_preparing
        and not attempt.pauses.filter(ended_at__isnull=True).exists()
    ):
        try:
            with transaction.atomic():
                trials_services.attempt_pause(attempt=attempt, by=None, reason=Pause.Reason.SCORING, now=now)
        except ServiceError as exc:  # ended or paused meanwhile: the clock is already still
            log.info("no scoring pause for attempt %s: %s", attempt.pk, exc.message)
    return job


def _too_late_to_score(job: ScoringJob, attempt: Attempt) -> bool:
    """A job asked for while the clock ran, first picked up once the deadline had ended the attempt.

    The scorer would read the workspace as it is now, with whatever was done after the deadline
    while nothing ended the attempt. An admin's re-run is scored (that is what it is for); so is
    a redelivery of a job that began in time.
    """
    return (
        job.kind != ScoringJob.Kind.FINAL
        and job.rerun_of_id is None
        and attempt.is_local
        and not attempt.is_running
        and attempt.end_reason in (Attempt.EndReason.DEADLINE, Attempt.EndReason.RESERVATION_END)
        and attempt.ended_at is not None
        and job.started_at is not None
        and job.started_at >= attempt.ended_at
    )
