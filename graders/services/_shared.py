"""What the grading services share: the unfinished statuses, and a scoring job sent to its workstation's queue."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from graders.models import ScoringJob
from trials.models import Attempt

UNFINISHED = (ScoringJob.Status.QUEUED, ScoringJob.Status.RUNNING)


def _queue(job: ScoringJob) -> None:
    from workstation.agent.tasks import scoring_job_run

    job_id, queue = str(job.pk), job.queue_name
    transaction.on_commit(lambda: scoring_job_run.apply_async(args=(job_id,), queue=queue))


def _queue_name(attempt: Attempt) -> str:
    return attempt.workstation.queue_name if attempt.workstation is not None else settings.LOCAL_WORKSTATION_QUEUE
