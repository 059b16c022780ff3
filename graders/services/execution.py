"""A scoring job run: the scorer in the attempt's sandbox, then the job's one entry, the CSV log and the clock."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from environments import packages
from graders.models import ScoreLogEntry, ScoringJob
from graders.services.numbers import attempt_score_update
from graders.services.workspaces import _policy, workspace_prepare
from trials import services as trials_services
from trials.models import Attempt, Pause
from workstation import layout, scoring, users, workspaces
from workstation import sandbox as workstation_sandbox

log = logging.getLogger(__name__)


def _final_context(job: ScoringJob, workspace: Path) -> dict[str, Any]:
    """What an end-of-attempt run of a Task Standard family needs: the log so far and the submission."""
    if job.kind != ScoringJob.Kind.FINAL:
        return {}
    entries = ScoreLogEntry.objects.filter(attempt=job.attempt).order_by("scored_at", "pk")
    return {
        "score_log": [{"score": e.score, "message": e.message, "elapsed_seconds": e.elapsed_seconds} for e in entries],
        "elapsed_seconds": job.attempt.elapsed(job.started_at).total_seconds(),
        # Never followed if it is a link, never waited on if it is a pipe: a regular file or nothing.
        "submission": workspaces.read_text(workspace, "submission.txt", limit=100_000),
    }


def _scorer_env(marker: str, passthrough: list[str] | None = None) -> dict[str, str]:
    env = {
        "LANG": "C.UTF-8",
        "TRITON_CACHE_DIR": f"{scoring.SCORER_HOME}/triton",
        scoring.RESULT_MARKER_ENV: marker,
    }
    for name in ("TRITON_INTERPRET", *(passthrough or [])):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def scoring_job_execute(*, job: ScoringJob) -> tuple[scoring.Outcome, ScoringJob.Status]:
    """Run the scorer in the attempt's sandbox. Never raises: any fault is a NaN outcome with a reason."""
    try:
        return _execute(job), ScoringJob.Status.DONE
    except Exception as exc:  # the worker must survive whatever the environment does
        log.exception("scoring job %s failed", job.pk)
        return scoring.Outcome(None, f"Scoring failed on the server: {exc}", {"error": type(exc).__name__}), (
            ScoringJob.Status.FAILED
        )


def _execute(job: ScoringJob) -> scoring.Outcome:
    attempt = job.attempt
    package = packages.find(attempt.environment.slug)
    if package is None:
        return scoring.Outcome(None, f"No scorer packaged for {attempt.environment.slug}.")
    workspace_prepare(attempt=attempt)  # a no-op once done
    if job.kind == ScoringJob.Kind.FINAL:
        # The final score is taken from the state the attempt ended in: nothing it left running
        # may change the workspace from here on.
        workstation_sandbox.stop(str(layout.sandbox_dir(attempt.pk)))
    policy = _policy(attempt)
    protected = layout.protected_dir()
    protected.mkdir(parents=True, exist_ok=True)
    os.chmod(protected, 0o711)  # noqa: S103 - only the folders in it are protected; it may be crossed
    copy = protected / "scorers" / str(job.pk)
    scoring.fresh_copy(package.populate, copy, protected=True)
    marker = scoring.new_marker()
    timeout = package.score_timeout_seconds
    run = scoring.ScorerRun(
        job=str(job.pk),
        argv=package.scorer_argv(
            policy.python,
            copy,
            Path(workstation_sandbox.HOME),
            final=job.kind == ScoringJob.Kind.FINAL,
            context=_final_context(job, layout.workspace(attempt.pk)),
        ),
        scorer_copy=copy,
        workspace_files=package.workspace_files,
        data_paths=package.data_paths(),
        harness_code=package.root / package.harness_folder if package.harness_folder else None,
        timeout=timeout,
        memory_bytes=int(package.memory_limit_gb * 1024**3) if package.memory_limit_gb else None,
        env=_scorer_env(marker, package.required_environment_variables),
        network=package.scorer_network,
    )
    digest = package.scorer_digest()
    try:
        result, _copied = scoring.score(policy, run, protected / "runs" / str(job.pk))
        outcome = scoring.outcome_from(result, marker, timeout=timeout)
        if result.out_of_memory and outcome.score is None:
            outcome = scoring.Outcome(None, "The scorer ran out of memory.", {**outcome.details, "out_of_memory": True})
        outcome.details.setdefault("duration_seconds", round(result.duration, 3))
        if result.dropped_bytes:
            outcome.details["output_cut_bytes"] = result.dropped_bytes
        outcome.scorer_digest = digest
        return outcome
    finally:
        shutil.rmtree(protected / "runs" / str(job.pk), ignore_errors=True)
        shutil.rmtree(copy, ignore_errors=True)


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
        details=_jsonable(details),
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


def _jsonable(value: Any) -> Any:
    """NaN and infinities are not JSON; the log keeps them as strings, and anything odd as its str()."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
