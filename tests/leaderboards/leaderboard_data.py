"""Test data for leaderboards: ended human attempts and agent runs with score logs, written as the app stores them."""

from __future__ import annotations

import itertools
from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from environments.models import Environment
from environments.services import environment_configuration_for
from graders.models import ScoreLogEntry
from trials.models import Attempt

_ids = itertools.count(1)


def ended_run(
    environment: Environment,
    log: list[tuple[float, float | None]],
    *,
    user: User | None = None,
    agent: tuple[str, str, str] | None = None,
    label: str = "",
    hours: float = 8.0,
    running: bool = False,
    configuration: str = "full",
) -> Attempt:
    """One run: `log` is [(elapsed hours, raw score or None for NaN)] in log order, scored at `configuration`."""
    started = timezone.now() - timedelta(hours=hours + 1)
    is_agent = agent is not None
    name, model, scaffold = agent or ("", "", "")
    attempt = Attempt.objects.create(
        participant_kind=Attempt.ParticipantKind.AGENT if is_agent else Attempt.ParticipantKind.HUMAN,
        user=user,
        environment=environment,
        time_limit=timedelta(hours=hours),
        started_at=started,
        status=Attempt.Status.RUNNING if running else Attempt.Status.ENDED,
        ended_at=None if running else started + timedelta(hours=hours),
        participant_label=label,
        agent_name=name,
        agent_model=model,
        agent_scaffold=scaffold,
        source=Attempt.Source.API if is_agent or user is None else Attempt.Source.LOCAL,
        external_id=f"test-{next(_ids)}" if is_agent or user is None else "",
        configuration=environment_configuration_for(environment=environment, name=configuration),
    )
    ScoreLogEntry.objects.bulk_create(
        ScoreLogEntry(
            attempt=attempt,
            scored_at=started + timedelta(hours=elapsed),
            elapsed_seconds=elapsed * 3600,
            score=raw,
        )
        for elapsed, raw in log
    )
    return attempt


def normalised(environment: Environment, raw: float, configuration: str = "full") -> float:
    """What the leaderboard should show for `raw`: normalised with the configuration's constants."""
    return environment_configuration_for(environment=environment, name=configuration).normalise(raw)
