"""Inputs of the leaderboard method tests (test_method_*.py): runs with score logs, a curve's points, random logs."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from graders.leaderboards import method
from graders.leaderboards.method import HOUR, EnvironmentInfo, GroupInfo, LeaderboardInput


def _input(runs: list[tuple[int, int, float, list[tuple[float, float]]]], n_envs: int = 2) -> LeaderboardInput:
    """runs: (environment index, group index, run length in hours, [(elapsed hours, raw)])."""
    envs = [
        EnvironmentInfo(slug=f"env{i}", title=f"Env {i}", starting_score=0.0, reference_score=1.0, aggregation="max")
        for i in range(n_envs)
    ]
    groups = [
        GroupInfo(key="humans", kind="human", label="Humans"),
        GroupInfo(key="agent:a||", kind="agent", label="a"),
    ]
    entry_run, entry_elapsed, entry_raw = [], [], []
    for r, (_, _, _, log) in enumerate(runs):
        for elapsed, raw in log:
            entry_run.append(r)
            entry_elapsed.append(elapsed * HOUR)
            entry_raw.append(raw)
    return LeaderboardInput(
        environments=envs,
        groups=groups,
        run_env=np.array([r[0] for r in runs], dtype=np.int64),
        run_group=np.array([r[1] for r in runs], dtype=np.int64),
        run_length=np.array([r[2] * HOUR for r in runs]),
        run_id=list(range(len(runs))),
        run_participant=[f"p{i}" for i in range(len(runs))],
        run_user=[None] * len(runs),
        entry_run=np.array(entry_run, dtype=np.int64),
        entry_elapsed=np.array(entry_elapsed),
        entry_raw=np.array(entry_raw),
    )


def _curve(result: method.LeaderboardResult, environment: str, group: str) -> dict[float, dict[str, Any]]:
    curve = next(c for c in result.curves if c["environment"] == environment and c["group"] == group)
    return {p["budget_hours"]: p for p in curve["points"]}


log_st = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=8 * HOUR),
        st.one_of(st.floats(min_value=-1, max_value=2), st.just(float("nan"))),
    ),
    max_size=12,
)
