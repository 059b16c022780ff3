"""Bootstrap confidence intervals, and one environment's curve with them."""

from __future__ import annotations

from typing import Any

import numpy as np

from graders.leaderboards.method._shared import (
    CI_LEVEL,
    HOUR,
    FloatArray,
)
from graders.leaderboards.method.curves import _GroupCurve
from graders.leaderboards.method.inputs import GroupInfo


def _intervals(replicates: FloatArray) -> list[tuple[float | None, float | None]]:
    """Percentile intervals of each column (one budget) of a replicates × budgets matrix, in one call."""
    if replicates.shape[0] == 0:
        return [(None, None)] * replicates.shape[1]
    tail = (1 - CI_LEVEL) / 2 * 100
    bounds = np.percentile(replicates, [tail, 100 - tail], axis=0)
    undefined = np.asarray(np.isnan(replicates).any(axis=0))
    return [
        (None, None) if undefined[j] else (float(bounds[0, j]), float(bounds[1, j])) for j in range(bounds.shape[1])
    ]


def _curve_json(
    environment: str, group: GroupInfo, curve: _GroupCurve, budgets: FloatArray, environments: list[str]
) -> dict[str, Any]:
    points = []
    intervals = _intervals(curve.boot)
    for j, b in enumerate(budgets):
        low, high = intervals[j]
        value = curve.point[j]
        points.append(
            {
                "budget_hours": float(b / HOUR),
                "k": curve.k[j],
                "value": value,
                "ci_low": low if value is not None else None,
                "ci_high": high if value is not None else None,
                "note": "" if value is not None else f"n < k: {curve.n} runs, best-of-{curve.k[j]} needs {curve.k[j]}",
            }
        )
    return {
        "environment": environment,
        "group": group.key,
        "group_label": group.label,
        "kind": group.kind,
        "run_length_hours": curve.length / HOUR,
        "runs": curve.n,
        "run_counts": curve.counts,
        "environments": environments,
        "points": points,
    }
