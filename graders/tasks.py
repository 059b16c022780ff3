"""Celery tasks for grading, sent to the attempt's workstation queue; thin wrappers over services."""

from __future__ import annotations

import logging

from celery import shared_task

from graders import services
from trials.models import Attempt
from trials.services import attempt_preparation_fail, attempt_workspace_mark_ready

log = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def scoring_job_run(job_id: str) -> str:
    """Idempotent by job id: a redelivered message for a finished job does nothing."""
    job = services.scoring_job_begin(job_id=job_id)
    if job is None:
        return "skipped"
    with services.scoring_job_heartbeats(job_id):
        outcome, status = services.scoring_job_execute(job=job)
    services.scoring_job_finish(job_id=job_id, outcome=outcome, status=status)
    if job.kind == job.Kind.FINAL:
        # Here, on the workstation that holds the attempt's user, once nothing of it has to run again.
        services.attempt_user_retire(attempt_id=job.attempt_id)
    return status


@shared_task(acks_late=True)
def scoring_jobs_recover() -> dict[str, str]:
    """Periodic: jobs whose worker went silent are run again or closed (see services.scoring_jobs_recover)."""
    return services.scoring_jobs_recover()


@shared_task(acks_late=True)
def workspace_prepare(attempt_id: int) -> list[str]:
    """Copy the starting solution (or run TaskFamily.start), then score it once; the clock starts when it is.

    A failure is said on the attempt's page, with its reason, and costs no time: the clock stays stopped
    until a retry (attempt_preparation_retry) succeeds.
    """
    attempt = Attempt.objects.select_related("environment").filter(pk=attempt_id).first()
    if attempt is None:
        return []
    try:
        prepared = services.workspace_prepare(attempt=attempt)
    except Exception as exc:  # whatever the environment's start step does, the worker says so and lives on
        log.exception("preparing the workspace of attempt %s failed", attempt_id)
        attempt_preparation_fail(attempt_id=attempt_id, reason=f"Preparing the workspace failed: {exc}"[:500])
        return []
    attempt_workspace_mark_ready(attempt_id=attempt_id)
    services.scoring_job_queue_start(attempt_id=attempt_id)
    return prepared


@shared_task(acks_late=True)
def attempt_user_retire(attempt_id: int) -> bool:
    """For an ended attempt that has no final scoring run (whose task retires the user otherwise)."""
    return services.attempt_user_retire(attempt_id=attempt_id)
