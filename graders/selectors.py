"""Reads for grading: an attempt's score log as the viewer may see it, job progress, the admin's job list."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from environments import instructions, packages
from environments.common.result import spent_amount
from graders.models import AttemptScore, ModelCall, ScoreLogEntry, ScoringJob
from graders.services import normalise
from rebench_site import roles
from rebench_site.params import id_param
from trials.models import Attempt

AnyUser = User | AnonymousUser


def scores_visible_to(attempt: Attempt, user: AnyUser) -> bool:
    """Hidden-score environments show experts only validity, until an admin releases the scores of
    ended attempts; admins always see everything."""
    environment = attempt.environment
    released = environment.scores_released and not attempt.is_running
    return environment.scores_visible or released or roles.is_admin(user)


@dataclass
class EntryRow:
    entry: ScoreLogEntry
    valid: bool
    verdict: str
    raw: float | None
    normalised: float | None
    budget_fraction: float | None


def _row(entry: ScoreLogEntry, attempt: Attempt, visible: bool) -> EntryRow:
    valid = entry.is_valid
    fraction = entry.details.get("budget_fraction") if isinstance(entry.details, dict) else None
    return EntryRow(
        entry=entry,
        valid=valid,
        verdict=entry.verdict,
        raw=entry.score if visible and valid else None,
        normalised=normalise(attempt.scale, entry.score) if visible and valid else None,
        budget_fraction=fraction if isinstance(fraction, int | float) else None,
    )


def entry_as_dict(entry: ScoreLogEntry, *, visible: bool) -> dict[str, Any]:
    """The API's shape of one entry; a hidden score is null, validity is always told."""
    attempt = entry.attempt
    valid = entry.is_valid
    data: dict[str, Any] = {
        "id": entry.pk,
        "scored_at": entry.scored_at.isoformat(),
        "elapsed_seconds": entry.elapsed_seconds,
        "valid": valid,
        "score": entry.score if visible and valid else None,
        "normalised_score": normalise(attempt.scale, entry.score) if visible and valid else None,
        "message": entry.message,
    }
    if visible:
        data["details"] = entry.details
    elif isinstance(entry.details, dict) and "budget_fraction" in entry.details:
        data["details"] = {"budget_fraction": entry.details["budget_fraction"]}
    else:
        data["details"] = {}
    return data


def job_progress(job: ScoringJob | None, now: datetime | None = None) -> dict[str, Any] | None:
    """'queued', 'running 00:42' or the result, for the live progress line."""
    if job is None:
        return None
    now = now or timezone.now()
    label = job.status
    if job.status == ScoringJob.Status.RUNNING and job.started_at:
        seconds = int((now - job.started_at).total_seconds())
        label = f"running {seconds // 60:02d}:{seconds % 60:02d}"
    return {"job": job, "label": label, "finished": job.status not in (ScoringJob.Status.QUEUED, "running")}


def attempt_scoring_marker(attempt: Attempt) -> str:
    """What changes when the attempt's scoring does (an entry, a job's state, the final score), in two queries.

    The attempt page compares it between polls and fetches its live parts only when it moved.
    """
    entries = ScoreLogEntry.objects.filter(attempt=attempt).aggregate(n=Count("pk"), last=Max("pk"))
    job = ScoringJob.objects.filter(attempt=attempt).order_by("-created_at").values_list("pk", "status").first()
    final = AttemptScore.objects.filter(attempt=attempt).values_list("computed_at", "is_final").first()
    return f"{entries['n']}:{entries['last']}:{job}:{final}"


def attempt_scores(attempt: Attempt, user: AnyUser) -> dict[str, Any]:
    """Everything the attempt page's grading card shows, in four queries."""
    visible = scores_visible_to(attempt, user)
    entries = list(ScoreLogEntry.objects.filter(attempt=attempt).select_related("job").order_by("scored_at", "pk"))
    rows = [_row(e, attempt, visible) for e in entries]
    latest_job = ScoringJob.objects.filter(attempt=attempt).order_by("-created_at").first()
    final = AttemptScore.objects.filter(attempt=attempt).first()
    package = packages.find(attempt.environment.slug)
    chart = [
        {"elapsed_minutes": round(r.entry.elapsed_seconds / 60, 2), "score": r.raw, "valid": r.valid}
        for r in rows
        if r.raw is not None
    ]
    return {
        "score_rows": rows,
        "scores_visible": visible,
        "score_chart_json": json.dumps(chart),
        "score_job": job_progress(latest_job),
        "final_score": final if visible else None,
        "has_scorer": package is not None,
        "instructions_markdown": package.instructions if package else "",
        "instructions_html": instructions.render(package.instructions) if package else "",
        "can_score": attempt.is_running and attempt.user_id == getattr(user, "pk", None),
        # Validity is told even where scores are hidden, so this may be said to anyone who sees the log.
        "no_valid_score": not attempt.is_running and not any(r.valid for r in rows),
    }


# The list shows a job as the first 8 hex digits of its UUID: a search can name it by as little as that.
JOB_ID_PREFIX = re.compile(r"[0-9a-f]{4,8}(-[0-9a-f-]{0,28})?", re.IGNORECASE)


def scoring_jobs_for_admin(
    *, status: str = "", kind: str = "", environment: str = "", configuration: str = "", q: str = ""
) -> QuerySet[ScoringJob]:
    """Scoring jobs for the admin's list, newest first; `q` matches the expert, the attempt's number or the job's id."""
    jobs = ScoringJob.objects.select_related("attempt__environment", "attempt__workstation", "attempt__user", "entry")
    if status:
        jobs = jobs.filter(status=status)
    if kind:
        jobs = jobs.filter(kind=kind)
    if environment:
        jobs = jobs.filter(attempt__environment__slug=environment)
    if configuration:
        jobs = jobs.filter(attempt__configuration__name=configuration)
    if q:
        match = Q(attempt__user__username__icontains=q) | Q(attempt__participant_label__icontains=q)
        if (attempt_id := id_param(q)) is not None:
            match |= Q(attempt_id=attempt_id)
        if JOB_ID_PREFIX.fullmatch(q):
            match |= Q(pk__startswith=q.lower())
        jobs = jobs.filter(match)
    return jobs.order_by("-created_at", "-pk")


def entries_awaiting_manual_score() -> QuerySet[ScoreLogEntry]:
    """Final entries that asked for a person's score and have none yet, oldest first."""
    scored = ScoreLogEntry.objects.filter(details__manual=True).values("attempt_id")
    return (
        ScoreLogEntry.objects.filter(details__manual_scoring=True, job__kind="final")
        .exclude(attempt_id__in=scored)
        .select_related("attempt__environment", "attempt__user")
        .order_by("scored_at")
    )


def manual_score_entries() -> QuerySet[ScoreLogEntry]:
    """Scores entered by hand, newest first."""
    return (
        ScoreLogEntry.objects.filter(details__manual=True)
        .select_related("attempt__environment", "attempt__user")
        .order_by("-scored_at")
    )


def attempt_model_spend(job: ScoringJob) -> dict[str, Any]:
    """What the attempt spent of its model budget before `job`: its earlier scoring runs and shell calls.

    RE-Bench gives one credit for the whole attempt, so a scorer that spends on the expert's behalf
    (the Rust scaffolding's model calls) is given what is left. Counted: every run the expert asked
    for (intermediate and final; NaN ones too where the scorer said what they spent, in each entry's
    `attempt_spend`) and the expert's own calls from the shell (ModelCall). Not counted: the starting
    solution's run (the site's measurement, before the clock starts) and an admin's re-run (it
    measures again; it is given what the run it repeats was given).
    """
    anchor = job.rerun_of if job.rerun_of is not None else job
    return _model_spend(job.attempt_id, before=anchor.created_at)


def attempt_model_spend_total(attempt_id: int) -> dict[str, Any]:
    """Everything the attempt has spent of its model budget so far (what a shell call is checked against)."""
    return _model_spend(attempt_id, before=None)


def _model_spend(attempt_id: int, *, before: datetime | None) -> dict[str, Any]:
    entries = ScoreLogEntry.objects.filter(attempt_id=attempt_id, job__rerun_of__isnull=True).exclude(
        job__kind=ScoringJob.Kind.START
    )
    calls = ModelCall.objects.filter(attempt_id=attempt_id)
    if before is not None:
        entries = entries.filter(job__created_at__lt=before)
        calls = calls.filter(created_at__lt=before)
    details = entries.values_list("details", flat=True)
    tokens, cost = 0.0, 0.0
    for call in calls.only("reserved_tokens", "reserved_cost", "tokens", "cost"):
        tokens += call.spent_tokens
        cost += call.spent_cost
    for entry in details:
        spend = entry.get("attempt_spend") if isinstance(entry, dict) else None
        if not isinstance(spend, dict):
            continue
        tokens += spent_amount(spend.get("tokens"))
        cost += spent_amount(spend.get("cost"))
    # Rounded to nano-dollars: the sum's float noise goes, a judge call's few millionths stay.
    return {"tokens": int(tokens), "cost": round(cost, 9)}
