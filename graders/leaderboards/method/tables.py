"""The tables: per-run rows, the humans table and the agents table."""

from __future__ import annotations

from typing import Any

import numpy as np

from graders.leaderboards.method._shared import (
    HOUR,
    FloatArray,
    IntArray,
)
from graders.leaderboards.method.curves import _GroupCurve
from graders.leaderboards.method.inputs import EnvironmentInfo, LeaderboardInput, LeaderboardResult


def _tables(
    result: LeaderboardResult,
    data: LeaderboardInput,
    env: EnvironmentInfo,
    runs: IntArray,
    scores: FloatArray,
    final_col: int,
    col_of: dict[float, int],
    budgets: FloatArray,
    per_group_env: dict[int, dict[int, _GroupCurve]],
    e: int,
) -> None:
    """Per-run rows, the humans table (one row per participant) and the agents table (one per agent)."""
    at2, at8 = col_of[2 * HOUR], col_of[8 * HOUR]
    final = scores[:, final_col]
    humans: dict[tuple[Any, str], dict[str, Any]] = {}
    agents: dict[int, list[float]] = {}
    for i, r in enumerate(runs.tolist()):
        group = data.groups[int(data.run_group[r])]
        row = {
            "environment": env.slug,
            "group": group.key,
            "kind": group.kind,
            "run_id": data.run_id[r],
            "participant": data.run_participant[r],
            "user_id": data.run_user[r],
            "run_length_hours": float(data.run_length[r] / HOUR),
            "final": float(final[i]),
            "at_2h": float(scores[i, at2]),
            "at_8h": float(scores[i, at8]),
        }
        result.runs.append(row)
        if group.kind == "human":
            key = (data.run_user[r], data.run_participant[r])
            h = humans.setdefault(
                key,
                {
                    "environment": env.slug,
                    "participant": data.run_participant[r],
                    "user_id": data.run_user[r],
                    "attempts": 0,
                    "best": 0.0,
                    "at_2h": 0.0,
                    "at_8h": 0.0,
                },
            )
            h["attempts"] += 1
            h["best"] = max(h["best"], row["final"])
            h["at_2h"] = max(h["at_2h"], row["at_2h"])
            h["at_8h"] = max(h["at_8h"], row["at_8h"])
        else:
            agents.setdefault(int(data.run_group[r]), []).append(row["final"])
    result.humans.extend(sorted(humans.values(), key=lambda h: (-h["best"], h["participant"])))
    for g, finals in sorted(agents.items(), key=lambda item: -max(item[1])):
        group = data.groups[g]
        result.agents.append(
            {
                "environment": env.slug,
                "group": group.key,
                "agent": group.agent_name or group.label,
                "model": group.agent_model,
                "scaffold": group.agent_scaffold,
                "runs": len(finals),
                "run_length_hours": per_group_env[g][e].length / HOUR,
                "mean": float(np.mean(finals)),
                "best": float(np.max(finals)),
            }
        )
