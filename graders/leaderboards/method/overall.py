"""The overall curve: the mean over the overall environments, equal weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from graders.leaderboards.method._shared import (
    HOUR,
    FloatArray,
)
from graders.leaderboards.method.curves import RUN_COUNT_KINDS, _GroupCurve
from graders.leaderboards.method.inputs import LeaderboardInput
from graders.leaderboards.method.intervals import _intervals


def _overall_json(
    data: LeaderboardInput, g: int, by_env: dict[int, _GroupCurve], budgets: FloatArray
) -> dict[str, Any] | None:
    """Mean over the overall environments, equal weights; replicates averaged alike.

    A group with runs in only some of them is incomplete: its mean over those it has, marked as
    such with the missing ones named (not comparable with a complete group's). None when it has
    runs in none of them."""
    group = data.groups[g]
    wanted = set(data.overall_environments) or {env.slug for env in data.environments}
    overall = [e for e, env in enumerate(data.environments) if env.slug in wanted]
    envs = [e for e in sorted(by_env) if e in overall]
    if not envs:
        return None
    slugs = [data.environments[e].slug for e in envs]
    absent = [data.environments[e].slug for e in overall if e not in by_env]
    points = []
    intervals = _intervals(np.mean([by_env[e].boot for e in envs], axis=0))
    for j, b in enumerate(budgets):
        missing = [data.environments[e].slug for e in envs if by_env[e].point[j] is None]
        if missing:
            points.append(
                {
                    "budget_hours": float(b / HOUR),
                    "k": None,
                    "value": None,
                    "ci_low": None,
                    "ci_high": None,
                    "note": "n < k in " + ", ".join(missing),
                }
            )
            continue
        value = float(np.mean([by_env[e].point[j] for e in envs]))
        low, high = intervals[j]
        ks = {by_env[e].k[j] for e in envs}
        points.append(
            {
                "budget_hours": float(b / HOUR),
                "k": ks.pop() if len(ks) == 1 else None,
                "value": value,
                "ci_low": low,
                "ci_high": high,
                "note": "",
            }
        )
    lengths = {by_env[e].length for e in envs}
    return {
        "environment": "overall",
        "group": group.key,
        "group_label": group.label,
        "kind": group.kind,
        "run_length_hours": lengths.pop() / HOUR if len(lengths) == 1 else None,
        "runs": int(sum(by_env[e].n for e in envs)),
        "run_counts": {kind: sum(by_env[e].counts.get(kind, 0) for e in envs) for kind in RUN_COUNT_KINDS},
        "complete": not absent,
        "coverage": [len(envs), len(overall)],
        "missing": absent,
        "environments": slugs,
        "points": points,
    }
