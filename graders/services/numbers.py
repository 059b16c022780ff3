"""The numbers: a raw score normalised, a score log aggregated, and the attempt's final score kept."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from environments.models import Environment, EnvironmentConfiguration
from graders.leaderboards.services import leaderboard_request_recompute
from graders.models import AttemptScore, ScoreLogEntry
from rebench_site.errors import ServiceError
from trials.models import Attempt


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
