"""What a workstation's agent may ask and tell the site (workstation.agent.site.Site), on the site's side.

Each function takes the asking workstation: None for the site's own worker (in-process, trusted),
else the workstation whose token signed the call, which may speak only of its own attempts' jobs
and attempts; any other is "not found", the same as one that doesn't exist, so a workstation can't
even learn which ids are in use elsewhere. The specs are plain data, all a workstation needs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from environments import task_standard
from graders import selectors as graders_selectors
from graders.models import ScoreLogEntry, ScoringJob
from graders.services.execution import scoring_job_finish
from graders.services.jobs import scoring_job_begin, scoring_job_queue_start
from graders.services.recovery import scoring_job_heartbeat
from rebench_site.errors import ServiceError
from trials import selectors as trials_selectors
from trials import services as trials_services
from trials.models import Attempt, Workstation
from workstation import scoring
from workstation.agent import work

MESSAGE_LIMIT = 10_000


class NotFound(ServiceError):
    """No such job or attempt for this workstation."""


def _attempt_of(attempt_id: int, workstation: Workstation | None) -> Attempt:
    attempts = Attempt.objects.select_related("environment", "reservation", "workstation")
    if workstation is not None:
        attempts = attempts.filter(workstation=workstation)
    attempt = attempts.filter(pk=attempt_id).first()
    if attempt is None:
        raise NotFound("No such attempt on this workstation.", field="attempt")
    return attempt


def _job_of(job_id: str, workstation: Workstation | None) -> ScoringJob:
    jobs = ScoringJob.objects.all()
    if workstation is not None:
        jobs = jobs.filter(attempt__workstation=workstation)
    job = jobs.filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such scoring job on this workstation.", field="job")
    return job


def attempt_spec(attempt: Attempt) -> dict[str, Any]:
    """The attempt as its workstation needs it: the environment's package and the sandbox."""
    slug = attempt.environment.slug
    sandbox = dataclasses.asdict(trials_selectors.attempt_sandbox_request(attempt))
    return {
        "attempt_id": attempt.pk,
        "slug": slug,
        "task_standard": task_standard.package_fields(slug),
        "sandbox": sandbox,
    }


def scoring_job_spec(job: ScoringJob) -> dict[str, Any]:
    """The job as its workstation runs it; a final run also carries the score log so far and the time worked."""
    attempt = _attempt_of(job.attempt_id, None)
    spec = {
        **attempt_spec(attempt),
        "job_id": str(job.pk),
        "kind": job.kind,
        "final": None,
        "attempt_spend": graders_selectors.attempt_model_spend(job),
    }
    if job.kind == ScoringJob.Kind.FINAL:
        entries = ScoreLogEntry.objects.filter(attempt=attempt).order_by("scored_at", "pk")
        attempt = Attempt.objects.prefetch_related("pauses").get(pk=attempt.pk)
        spec["final"] = {
            "score_log": [
                {"score": e.score, "message": e.message, "elapsed_seconds": e.elapsed_seconds} for e in entries
            ],
            "elapsed_seconds": attempt.elapsed(job.started_at).total_seconds(),
        }
    return work.jsonable(spec)  # type: ignore[no-any-return]  # a dict stays a dict


def agent_scoring_begin(*, job_id: str, workstation: Workstation | None) -> dict[str, Any] | None:
    """The worker picked the job up (scoring_job_begin: the clock stops); its spec, or None if it isn't to run."""
    _job_of(job_id, workstation)
    job = scoring_job_begin(job_id=job_id)
    return None if job is None else scoring_job_spec(job)


def agent_scoring_beat(*, job_id: str, workstation: Workstation | None) -> bool:
    _job_of(job_id, workstation)
    return scoring_job_heartbeat(job_id=job_id)


def outcome_from_data(data: Any) -> scoring.Outcome:
    """A workstation's outcome (workstation.agent.tasks.outcome_data) checked: a 400 names what is wrong."""
    if not isinstance(data, dict):
        raise ServiceError("The outcome must be an object.", field="outcome")
    score = data.get("score")
    if score is not None and (
        isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score)
    ):
        raise ServiceError("The score must be a finite number or null (invalid).", field="outcome.score")
    message, details, digest = data.get("message", ""), data.get("details", {}), data.get("scorer_digest", "")
    if not isinstance(message, str):
        raise ServiceError("The message must be text.", field="outcome.message")
    if not isinstance(details, dict):
        raise ServiceError("The details must be an object.", field="outcome.details")
    if not isinstance(digest, str) or len(digest) > 64:
        raise ServiceError("The scorer digest must be a SHA-256 in hex.", field="outcome.scorer_digest")
    return scoring.Outcome(None if score is None else float(score), message[:MESSAGE_LIMIT], details, digest)


def agent_scoring_finish(
    *, job_id: str, outcome: scoring.Outcome, status: str, workstation: Workstation | None
) -> dict[str, Any]:
    """The job's one entry (scoring_job_finish); `retire`: a final run's attempt has ended, its user may go."""
    if status not in (ScoringJob.Status.DONE, ScoringJob.Status.FAILED):
        raise ServiceError("The status must be done or failed.", field="status")
    job = _job_of(job_id, workstation)
    entry = scoring_job_finish(job_id=job_id, outcome=outcome, status=status)
    retire = job.kind == ScoringJob.Kind.FINAL and not Attempt.objects.get(pk=job.attempt_id).is_running
    return {"entry": entry.pk if entry is not None else None, "retire": retire}


def agent_preparation(*, attempt_id: int, workstation: Workstation | None) -> dict[str, Any]:
    return work.jsonable(attempt_spec(_attempt_of(attempt_id, workstation)))  # type: ignore[no-any-return]


@transaction.atomic
def agent_preparation_done(*, attempt_id: int, workstation: Workstation | None) -> None:
    """The workspace is ready: the starting solution is scored next (the clock starts once it is)."""
    _attempt_of(attempt_id, workstation)
    trials_services.attempt_workspace_mark_ready(attempt_id=attempt_id)
    scoring_job_queue_start(attempt_id=attempt_id)


def agent_preparation_failed(*, attempt_id: int, reason: str, workstation: Workstation | None) -> bool:
    _attempt_of(attempt_id, workstation)
    return trials_services.attempt_preparation_fail(attempt_id=attempt_id, reason=reason[:500])


def agent_retirement(*, attempt_id: int, workstation: Workstation | None) -> bool:
    """Whether the attempt's user may be retired: it exists and has ended. Nothing happens to a running attempt."""
    try:
        return not _attempt_of(attempt_id, workstation).is_running
    except NotFound:
        return False


def agent_heartbeat(*, workstation_id: int, inventory: Mapping[str, Any], workstation: Workstation | None) -> bool:
    """A workstation's heartbeat with its inventory; a workstation's agent speaks only for itself."""
    if workstation is not None and workstation.pk != workstation_id:
        raise NotFound("That is another workstation's heartbeat.", field="workstation")
    return trials_services.workstation_record_heartbeat(workstation_id=workstation_id, inventory=inventory)
