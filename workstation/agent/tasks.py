"""The tasks on a workstation's queue: each asks the site (site.Site) for its spec, works here, and tells the site.

They run wherever that queue's worker runs: the workstation's agent (no database; HttpSite) or the
web host's own worker for the local workstation (the site in-process). Either way a task's body is
the same code, and what it reads and writes of the site goes through the one contract.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import shared_task
from django.conf import settings

from workstation import inventory, scoring
from workstation.agent import work
from workstation.agent.site import site

log = logging.getLogger(__name__)


def outcome_data(outcome: scoring.Outcome) -> dict[str, Any]:
    """The outcome as JSON: an invalid (None or non-finite) score is None, odd values in its details strings."""
    score = outcome.score if outcome.score is not None and math.isfinite(outcome.score) else None
    return {
        "score": score,
        "message": outcome.message,
        "details": work.jsonable(outcome.details),
        "scorer_digest": outcome.scorer_digest,
    }


@contextmanager
def beating(job_id: str) -> Iterator[None]:
    """While the body runs (the scorer), a thread tells the site every SCORING_HEARTBEAT_SECONDS that it does."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(settings.SCORING_HEARTBEAT_SECONDS):
            try:
                site().scoring_beat(job_id)
            except Exception:  # the site or the network hiccupped: the next beat tries again
                log.exception("scoring job %s: heartbeat failed", job_id)

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


@shared_task(name="workstation.score", acks_late=True, reject_on_worker_lost=True)
def scoring_job_run(job_id: str) -> str:
    """Idempotent by job id: a redelivered message for a finished job does nothing."""
    spec = site().scoring_begin(job_id)
    if spec is None:
        return "skipped"
    with beating(job_id):
        outcome, status = work.score(spec)
    answer = site().scoring_finish(job_id, outcome_data(outcome), status)
    log.info("scoring job %s of attempt %s: %s", job_id, spec["attempt_id"], status)
    if answer.get("retire"):
        # Here, on the workstation that holds the attempt's user, once nothing of it has to run again.
        work.retire(int(spec["attempt_id"]))
    return status


@shared_task(name="workstation.prepare", acks_late=True)
def workspace_prepare(attempt_id: int) -> list[str]:
    """Copy the starting solution (or run TaskFamily.start); the site then scores it, and the clock starts.

    A failure is said on the attempt's page, with its reason, and costs no time: the clock stays stopped
    until a retry (attempt_preparation_retry) succeeds.
    """
    spec = site().preparation(attempt_id)
    if spec is None:
        return []
    try:
        prepared = work.prepare(spec)
    except Exception as exc:  # whatever the environment's start step does, the worker says so and lives on
        log.exception("preparing the workspace of attempt %s failed", attempt_id)
        site().preparation_failed(attempt_id, f"Preparing the workspace failed: {exc}"[:500])
        return []
    site().preparation_done(attempt_id)
    return prepared


@shared_task(name="workstation.retire", acks_late=True)
def attempt_user_retire(attempt_id: int) -> bool:
    """For an ended attempt that has no final scoring run (whose task retires the user otherwise)."""
    if not site().retirement(attempt_id):
        return False
    return work.retire(attempt_id)


@shared_task(name="workstation.heartbeat")
def workstation_heartbeat(workstation_id: int, _ssh_user: str = "") -> bool:
    """Runs on the workstation's own queue: it only arrives if that workstation's worker is alive.

    It says whether this machine can sandbox attempts (bubblewrap, user namespaces, cgroups), and
    what it has: its GPUs as nvidia-smi sees them, with processes no attempt runs, and its disk.
    `_ssh_user` is ignored (messages sent before an upgrade carry it): every workstation's attempts
    run as their own users now, on SSH ones too, so no login's GPU processes are the site's.
    """
    report = inventory.report()
    if report["sandbox_problems"]:
        log.warning("workstation %s can't sandbox attempts: %s", workstation_id, "; ".join(report["sandbox_problems"]))
    return site().heartbeat(workstation_id, report)
