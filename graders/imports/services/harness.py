"""The harness API: agent runs created, scored entry by entry, and finished by the harness that runs them."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from environments.models import Environment, EnvironmentConfiguration
from environments.services import environment_configuration_for
from graders.imports import formats
from graders.imports.services._shared import _request_leaderboard_recompute
from graders.imports.services.run_imports import configuration_name_check
from graders.models import ScoreLogEntry
from graders.services import attempt_score_update
from rebench_site import roles
from rebench_site.errors import NotAllowed, ServiceError
from trials.models import Attempt


def _may_write(attempt: Attempt, by: User) -> None:
    """A harness writes only the runs it created; admins write any API run."""
    if attempt.source != Attempt.Source.API:
        raise NotAllowed("Only runs entered through this API are written through it.")
    if attempt.submitted_by_id != by.pk and not roles.is_admin(by):
        raise NotAllowed("Another harness created that run.")


def _may_use_api(by: User) -> None:
    if not (roles.is_admin(by) or roles.has_role(by, roles.HARNESS)):
        raise NotAllowed("Agent runs are entered by harness accounts and admins.")


@transaction.atomic
def agent_run_create(
    *,
    by: User,
    run_id: str,
    environment: str,
    agent_name: str,
    agent_model: str = "",
    agent_scaffold: str = "",
    configuration: str = EnvironmentConfiguration.FULL,
    time_limit_seconds: float | None = None,
    started_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[Attempt, bool]:
    """Create the run, or update it when this harness sent the same run id before. Returns (run, created)."""
    _may_use_api(by)
    now = now or timezone.now()
    run_id = (run_id or "").strip()
    if not run_id:
        raise ServiceError("Give the run's id in your harness.", field="run_id")
    if len(run_id) > formats.MAX_ID_LENGTH:
        raise ServiceError(f"At most {formats.MAX_ID_LENGTH} characters.", field="run_id")
    env = Environment.objects.filter(slug=environment).first()
    if env is None:
        raise ServiceError(f"Unknown environment {environment!r}.", field="environment")
    if not (agent_name or "").strip():
        raise ServiceError("Name the agent.", field="agent_name")
    scale = environment_configuration_for(environment=env, name=configuration_name_check(configuration))
    limit = env.time_limit if time_limit_seconds is None else _positive_duration(time_limit_seconds)
    if started_at is not None and timezone.is_naive(started_at):
        raise ServiceError("Give the time zone too.", field="started_at")
    fields: dict[str, Any] = {
        "participant_kind": Attempt.ParticipantKind.AGENT,
        "agent_name": agent_name.strip()[:200],
        "agent_model": (agent_model or "").strip()[:200],
        "agent_scaffold": (agent_scaffold or "").strip()[:200],
        "environment": env,
        "configuration": scale,
        "time_limit": limit,
    }
    attempt = Attempt.objects.select_for_update().filter(source=Attempt.Source.API, external_id=run_id).first()
    if attempt is not None:
        _may_write(attempt, by)
        if attempt.score_log.filter(elapsed_seconds__gt=limit.total_seconds()).exists():
            raise ServiceError("The run has score-log entries beyond that run length.", field="time_limit_seconds")
        environment_changed = (attempt.environment_id, attempt.configuration_id) != (env.pk, scale.pk)
        for name, value in fields.items():
            setattr(attempt, name, value)
        if started_at is not None:
            attempt.started_at = started_at
        attempt.save()
        if environment_changed:
            attempt_score_update(attempt=attempt, is_final=not attempt.is_running, now=now)
            _request_leaderboard_recompute()
        return attempt, False
    try:
        with transaction.atomic():
            attempt = Attempt.objects.create(
                source=Attempt.Source.API,
                external_id=run_id,
                submitted_by=by,
                started_at=started_at or now,
                **fields,
            )
    except IntegrityError:
        # Two requests with the same new run id at once: the other one created it; this one updates it.
        return agent_run_create(
            by=by,
            run_id=run_id,
            environment=environment,
            agent_name=agent_name,
            agent_model=agent_model,
            agent_scaffold=agent_scaffold,
            configuration=configuration,
            time_limit_seconds=time_limit_seconds,
            started_at=started_at,
            now=now,
        )
    return attempt, True


def _positive_duration(seconds: float) -> timedelta:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise ServiceError("The run length must be a positive number of seconds.", field="time_limit_seconds")
    return timedelta(seconds=seconds)


@transaction.atomic
def agent_run_log_score(
    *,
    attempt: Attempt,
    by: User,
    elapsed_seconds: float,
    score: float | None,
    message: str = "",
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> ScoreLogEntry:
    """One score-log entry of a running API run; score None is an invalid (NaN) result. The final score follows."""
    _may_use_api(by)
    now = now or timezone.now()
    attempt = Attempt.objects.select_for_update().select_related("environment").get(pk=attempt.pk)
    _may_write(attempt, by)
    if not attempt.is_running:
        raise ServiceError("The run is finished; its score log is closed.", field="run")
    if isinstance(elapsed_seconds, bool) or not isinstance(elapsed_seconds, int | float):
        raise ServiceError("Elapsed time must be a number of seconds.", field="elapsed_seconds")
    if not math.isfinite(elapsed_seconds) or elapsed_seconds < 0:
        raise ServiceError("Elapsed time can't be negative.", field="elapsed_seconds")
    limit = attempt.time_limit.total_seconds()
    if elapsed_seconds > limit:
        raise ServiceError(
            f"Elapsed time {elapsed_seconds:g} s is beyond the run length {limit:g} s.", field="elapsed_seconds"
        )
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float) or math.isinf(score)):
        raise ServiceError("The score must be a number (or null for an invalid result).", field="score")
    if score is not None and math.isnan(score):
        score = None
    if details is not None and not isinstance(details, dict):
        raise ServiceError("Details must be a JSON object.", field="details")
    entry = ScoreLogEntry.objects.create(
        attempt=attempt,
        scored_at=now,
        elapsed_seconds=float(elapsed_seconds),
        score=float(score) if score is not None else None,
        message=(message or "")[:10_000],
        details=details or {},
    )
    attempt_score_update(attempt=attempt, now=now)
    _request_leaderboard_recompute()
    return entry


@transaction.atomic
def agent_run_finish(*, attempt: Attempt, by: User, now: datetime | None = None) -> Attempt:
    """The harness is done with the run: it ends and its score is final. Finishing twice changes nothing."""
    _may_use_api(by)
    now = now or timezone.now()
    attempt = Attempt.objects.select_for_update().select_related("environment").get(pk=attempt.pk)
    _may_write(attempt, by)
    if not attempt.is_running:
        return attempt
    attempt.status = Attempt.Status.ENDED
    attempt.ended_at = max(now, attempt.started_at)
    attempt.end_reason = Attempt.EndReason.HARNESS
    attempt.save(update_fields=["status", "ended_at", "end_reason"])
    attempt_score_update(attempt=attempt, is_final=True, now=now)
    _request_leaderboard_recompute()
    return attempt
