"""Writes for grading: queue and run scoring jobs, write the score log, keep each attempt's final score."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import shutil
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django import db
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record
from environments import packages
from environments.models import Environment, EnvironmentConfiguration
from graders.leaderboards.services import leaderboard_request_recompute
from graders.models import AttemptScore, ScoreLogEntry, ScoringJob
from rebench_site import roles
from rebench_site.errors import NotAllowed, ServiceError
from trials import selectors as trials_selectors
from trials import services as trials_services
from trials.models import Attempt, Pause
from workstation import layout, scoring, users, workspaces
from workstation import policy as workstation_policy
from workstation import sandbox as workstation_sandbox

log = logging.getLogger(__name__)
User = AbstractBaseUser
UNFINISHED = (ScoringJob.Status.QUEUED, ScoringJob.Status.RUNNING)


# --- numbers -------------------------------------------------------------------------------------


def normalise(scale: Environment | EnvironmentConfiguration, raw: float | None) -> float | None:
    """(raw − start)/(reference − start), below-start clipped to 0, above 1 allowed; NaN stays None.

    `scale` is the run's configuration (Attempt.scale): a run is always normalised with the constants
    it was scored at, whatever the site runs now.
    """
    if raw is None or not math.isfinite(raw):
        return None
    return scale.normalise(raw)


def aggregate(scores: Iterable[float | None], aggregation: str) -> float | None:
    """The environment's aggregate over valid entries, in log order: min, max or last."""
    valid = [s for s in scores if s is not None and math.isfinite(s)]
    if not valid:
        return None
    if aggregation == Environment.Aggregation.MIN:
        return min(valid)
    if aggregation == Environment.Aggregation.MAX:
        return max(valid)
    if aggregation == Environment.Aggregation.LAST:
        return valid[-1]
    raise ServiceError(f"Unknown aggregation {aggregation!r}.", field="aggregation")


@transaction.atomic
def attempt_score_update(*, attempt: Attempt, is_final: bool = False, now: datetime | None = None) -> AttemptScore:
    """Recompute the attempt's final score from its score log."""
    now = now or timezone.now()
    environment = attempt.environment
    scores = list(
        ScoreLogEntry.objects.filter(attempt=attempt).order_by("scored_at", "pk").values_list("score", flat=True)
    )
    raw = aggregate(scores, environment.aggregation)
    row, _ = AttemptScore.objects.select_for_update().get_or_create(attempt=attempt, defaults={"computed_at": now})
    row.raw = raw
    row.normalised = normalise(attempt.scale, raw)
    row.valid_entries = sum(1 for s in scores if s is not None and math.isfinite(s))
    row.is_final = row.is_final or is_final
    row.computed_at = now
    row.save()
    leaderboard_request_recompute()  # debounced; runs after this transaction commits
    return row


# --- workspaces ------------------------------------------------------------------------------------


def _policy(attempt: Attempt) -> workstation_sandbox.Policy:
    """The attempt's sandbox on this machine (the worker runs on its workstation), its tools in place."""
    layout.install_tools()
    return workstation_policy.local_policy(trials_selectors.attempt_sandbox_request(attempt))


def workspace_prepare(*, attempt: Attempt) -> list[str]:
    """Set up the attempt's workspace once: the starting solution (or TaskFamily.start) copied in.

    The package fills a staging folder of ours (its start script runs there, never in the
    workspace, where the expert may already be); the staging is then copied in by the attempt's
    own user inside its sandbox, never over a file that exists. The "prepared" mark lives beside
    the workspace, root's, so the expert can't make us redo it.
    """
    workspace = layout.workspace(attempt.pk)
    mark = workspace.parent / f".{workspace.name}.prepared"
    if mark.exists():
        return []
    package = packages.find(attempt.environment.slug)
    policy = _policy(attempt)
    workspaces.make(policy)
    copied: list[str] = []
    if package is not None:
        staging = layout.protected_dir() / "staging" / f"attempt-{attempt.pk}"
        with workspaces.staging_folder(staging, gid=policy.gid) as folder:
            package.prepare_staging(folder)
            copied = workspaces.populate(policy, folder)
    mark.touch()
    return copied


def attempt_user_retire(*, attempt_id: int) -> bool:
    """Once an ended attempt's final score is in: stop what it left running, drop its sandbox, expire its user.

    The workspace and the account stay (see workstation.users.attempt_user_retire); an admin's
    re-run of the scoring still works. Nothing happens to a running attempt.
    """
    attempt = Attempt.objects.filter(pk=attempt_id).first()
    if attempt is None or attempt.is_running:
        return False
    workstation_sandbox.stop(str(layout.sandbox_dir(attempt_id)), remove=True)
    return users.attempt_user_retire(attempt_id)


def workspace_prepare_queue(attempt: Attempt) -> None:
    """After commit, prepare the workspace on the attempt's workstation (its worker owns the disk)."""
    from graders.tasks import workspace_prepare as task

    attempt_id, queue = attempt.pk, _queue_name(attempt)
    transaction.on_commit(lambda: task.apply_async(args=[attempt_id], queue=queue))


def _queue(job: ScoringJob) -> None:
    from graders.tasks import scoring_job_run

    job_id, queue = str(job.pk), job.queue_name
    transaction.on_commit(lambda: scoring_job_run.apply_async(args=[job_id], queue=queue))


def _queue_name(attempt: Attempt) -> str:
    return attempt.workstation.queue_name if attempt.workstation_id else settings.LOCAL_WORKSTATION_QUEUE


# --- jobs ------------------------------------------------------------------------------------------


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
def scoring_job_queue_start(*, attempt_id: int) -> ScoringJob | None:
    """Score the starting solution once the workspace is ready, as RE-Bench does at start.

    Skipped when the attempt has any scoring job already (the expert was quicker, or this is a
    redelivery), has ended, or its environment is scored only at the end.
    """
    attempt = (
        Attempt.objects.select_for_update(of=("self",)).select_related("environment", "workstation").get(pk=attempt_id)
    )
    package = packages.find(attempt.environment.slug)
    if not attempt.is_running or package is None or not package.accepts_intermediate:
        return None
    if ScoringJob.objects.filter(attempt=attempt).exists():
        return None
    job = ScoringJob.objects.create(attempt=attempt, queue_name=_queue_name(attempt))
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


def attempt_user_retire_queue(attempt: Attempt) -> None:
    """After commit, retire the attempt's Unix user on its workstation (whose worker holds the user)."""
    from graders.tasks import attempt_user_retire as task

    attempt_id, queue = attempt.pk, _queue_name(attempt)
    transaction.on_commit(lambda: task.apply_async(args=[attempt_id], queue=queue))


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
    if job.rerun_of_id is None and attempt.is_running and not attempt.pauses.filter(ended_at__isnull=True).exists():
        try:
            with transaction.atomic():
                trials_services.attempt_pause(attempt=attempt, by=None, reason=Pause.Reason.SCORING, now=now)
        except ServiceError as exc:  # ended or paused meanwhile: the clock is already still
            log.info("no scoring pause for attempt %s: %s", attempt.pk, exc.message)
    return job


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
    return done


def scoring_job_heartbeat(*, job_id: str, now: datetime | None = None) -> bool:
    """The worker running the job is alive; False once the job is no longer running (closed or requeued)."""
    return bool(
        ScoringJob.objects.filter(pk=job_id, status=ScoringJob.Status.RUNNING).update(
            heartbeat_at=now or timezone.now()
        )
    )


@contextlib.contextmanager
def scoring_job_heartbeats(job_id: str) -> Iterator[None]:
    """While the body runs (the scorer), a thread beats for the job every SCORING_HEARTBEAT_SECONDS."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.SCORING_HEARTBEAT_SECONDS):
                try:
                    scoring_job_heartbeat(job_id=job_id)
                except Exception:  # a database hiccup: the next beat tries again
                    log.exception("scoring job %s: heartbeat failed", job_id)
        finally:
            db.connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


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
