"""A scoring job's end: its one entry, the CSV log and the clock (the scorer itself runs in workstation.agent)."""

from __future__ import annotations

import csv
import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from graders.models import ScoreLogEntry, ScoringJob
from graders.services.numbers import attempt_score_update
from trials import services as trials_services
from trials.models import Attempt, Pause
from workstation import scoring, users
from workstation.agent import work

log = logging.getLogger(__name__)


CSV_LOG_HEADER = ["timestamp", "score", "message", "details"]


def csv_log_path(attempt_id: int) -> Path:
    return Path(settings.PROTECTED_DIR) / "logs" / f"attempt-{attempt_id}.csv"


def _append_csv_log(attempt_id: int, entry: ScoreLogEntry) -> None:
    """The RE-Bench-style score log on disk (timestamp, score, message, details), in the protected folder.

    root:protected, 0640 in a 0750 folder, from the moment it exists: the scoring group reads it,
    as METR's protected scoring lets its scorer read /protected; no attempt's user (the expert's
    shell) can read or list it. Unlike METR's log (0420, appended to by score.py itself) the group
    gets no write: our scorers never write the log, the worker appends each entry, so a solution
    run by one attempt's scorer can't forge lines in another attempt's log.
    """
    path = csv_log_path(attempt_id)
    logs = path.parent
    logs.mkdir(parents=True, exist_ok=True)
    protected_gid = None
    if users.is_root():
        protected_gid = scoring.ensure_protected_group()
        os.chown(logs, 0, protected_gid)
    os.chmod(logs, 0o750)  # noqa: S103 - no access for others; the group reads, as the docstring says
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    with os.fdopen(fd, "a", newline="") as handle:
        if protected_gid is not None:
            os.fchown(handle.fileno(), 0, protected_gid)
        os.fchmod(handle.fileno(), 0o640)
        writer = csv.writer(handle)
        if os.fstat(handle.fileno()).st_size == 0:
            writer.writerow(CSV_LOG_HEADER)
        writer.writerow([entry.scored_at.isoformat(), entry.raw, entry.message, json.dumps(entry.details)])


@transaction.atomic
def scoring_job_finish(
    *,
    job_id: str,
    outcome: scoring.Outcome,
    status: str = ScoringJob.Status.DONE,
    now: datetime | None = None,
) -> ScoreLogEntry | None:
    """Write the job's one entry and restart the clock; a second delivery finds the entry and writes nothing."""
    now = now or timezone.now()
    job = ScoringJob.objects.select_for_update(of=("self",)).select_related("attempt__environment").get(pk=job_id)
    if job.status in (ScoringJob.Status.DONE, ScoringJob.Status.FAILED):
        return ScoreLogEntry.objects.filter(job=job).first()
    return _job_record(
        job,
        score=outcome.score,
        message=outcome.message,
        details=outcome.details,
        status=status,
        now=now,
        scorer_digest=outcome.scorer_digest,
    )


def _job_record(
    job: ScoringJob,
    *,
    score: float | None,
    message: str,
    details: dict[str, Any],
    status: str,
    now: datetime,
    scorer_digest: str = "",
) -> ScoreLogEntry:
    """With the job locked and unfinished: write its one entry, finish it, and restart the clock."""
    attempt = Attempt.objects.prefetch_related("pauses").get(pk=job.attempt_id)
    # The clock stopped when scoring began, so this is the working time at that moment.
    elapsed = attempt.elapsed(job.started_at or now).total_seconds()
    if job.rerun_of_id is not None:
        # Said in the entry, so the log never shows an admin's re-score as the expert's own request.
        details = {**details, "admin_rerun": True, "rerun_of": str(job.rerun_of_id)}
    entry = ScoreLogEntry.objects.create(
        attempt=attempt,
        job=job,
        scored_at=now,
        elapsed_seconds=elapsed,
        score=score,
        message=message,
        details=work.jsonable(details),
        scorer_digest=scorer_digest,
    )
    job.status = status
    job.finished_at = now
    job.error = "" if status == ScoringJob.Status.DONE else message[:2000]
    job.save(update_fields=["status", "finished_at", "error"])
    # Scoring that outlasted the slot's hard stop: the attempt ends there, not when the scorer returned.
    trials_services.attempt_end_if_overdue(attempt_id=attempt.pk, now=now)
    attempt = Attempt.objects.select_related("environment").get(pk=attempt.pk)
    if job.kind == ScoringJob.Kind.START and attempt.is_preparing:
        # The environment is ready once its starting solution is scored: the clock starts at this moment.
        # A run that could not score it (the scorer couldn't run, the job was lost) leaves the clock
        # stopped and says why; preparing again scores it again.
        if status == ScoringJob.Status.DONE:
            trials_services.attempt_clock_start(attempt_id=attempt.pk, now=now)
        else:
            trials_services.attempt_preparation_fail(
                attempt_id=attempt.pk, reason=f"The starting solution could not be scored: {message}", now=now
            )
        attempt = Attempt.objects.select_related("environment").get(pk=attempt.pk)
    open_pause = attempt.pauses.filter(ended_at__isnull=True).first()
    if attempt.is_running and open_pause is not None and open_pause.reason == Pause.Reason.SCORING:
        trials_services.attempt_resume(attempt=attempt, by=None, now=now)
    attempt_score_update(attempt=attempt, is_final=job.kind == ScoringJob.Kind.FINAL, now=now)
    transaction.on_commit(lambda: _append_csv_log(attempt.pk, entry))
    return entry
