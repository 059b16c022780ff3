"""Every curve and every table from the runs: the steps in order."""

from __future__ import annotations

from typing import Any

import numpy as np

from graders.leaderboards.method._shared import (
    BUDGET_HOURS,
    HOUR,
)
from graders.leaderboards.method.curves import _GroupCurve, _mode_length, _seed_for, group_curve, run_end_columns
from graders.leaderboards.method.inputs import GroupInfo, LeaderboardInput, LeaderboardResult
from graders.leaderboards.method.intervals import _curve_json
from graders.leaderboards.method.overall import _overall_json
from graders.leaderboards.method.score import score_matrix
from graders.leaderboards.method.tables import _tables


def leaderboard_compute(
    data: LeaderboardInput, *, resamples: int = 1000, seed: int = 0, overrun_grace_seconds: float = 3600.0
) -> LeaderboardResult:
    """Every curve (per environment and overall, per group) and every table, from the runs.

    A run longer than its group's L by at most `overrun_grace_seconds` counts as one run scored at
    its own end (run_end_columns)."""
    budgets = np.array(BUDGET_HOURS) * HOUR
    lengths = np.unique(data.run_length) if data.run_length.size else np.array([])
    times = np.unique(np.concatenate([budgets, lengths, [np.inf]]))
    final_col = times.size - 1
    col_of = {float(t): i for i, t in enumerate(times)}
    budget_cols = [col_of[float(b)] for b in budgets]
    result = LeaderboardResult(
        budget_hours=[float(h) for h in BUDGET_HOURS],
        environments=[],
        groups=[_group_json(g) for g in data.groups],
        resamples=resamples,
        seed=seed,
        configuration=data.configuration,
    )
    # Entries grouped by run once; each environment then takes its slice.
    per_group_env: dict[int, dict[int, _GroupCurve]] = {}
    entry_order = np.argsort(data.entry_run, kind="stable")
    entry_run = data.entry_run[entry_order]
    run_bounds = np.searchsorted(entry_run, np.arange(data.run_count + 1))
    for e, env in enumerate(data.environments):
        runs = np.flatnonzero(data.run_env == e)
        present_groups = sorted(set(data.run_group[runs].tolist()), key=lambda g: data.groups[g].key)
        result.environments.append(
            {
                "slug": env.slug,
                "title": env.title,
                "configuration": env.configuration,
                "starting_score": env.starting_score,
                "reference_score": env.reference_score,
                "runs": int(runs.size),
                "groups": [data.groups[g].key for g in present_groups],
            }
        )
        if runs.size == 0:
            continue
        local = np.full(data.run_count, -1, dtype=np.int64)
        local[runs] = np.arange(runs.size)
        picks = np.concatenate([entry_order[run_bounds[r] : run_bounds[r + 1]] for r in runs])
        scores = score_matrix(
            entry_run=local[data.entry_run[picks]],
            entry_elapsed=data.entry_elapsed[picks],
            entry_raw=data.entry_raw[picks],
            n_runs=runs.size,
            times=times,
            start=data.run_start[runs] if data.run_start.size else env.starting_score,
            reference=data.run_reference[runs] if data.run_reference.size else env.reference_score,
            aggregation=env.aggregation,
        )
        for g in present_groups:
            group = data.groups[g]
            mine = np.flatnonzero(data.run_group[runs] == g)
            run_lengths = data.run_length[runs[mine]]
            length = _mode_length(run_lengths)
            ends, counts = run_end_columns(run_lengths, length, grace=overrun_grace_seconds, col_of=col_of)
            rng = np.random.default_rng(_seed_for(seed, env.slug, group.key))
            curve = group_curve(
                scores[mine],
                budget_columns=budget_cols,
                at_length=scores[mine][np.arange(mine.size), ends],
                budgets=budgets,
                length=length,
                resamples=resamples,
                rng=rng,
            )
            curve.counts = counts
            per_group_env.setdefault(g, {})[e] = curve
            result.curves.append(_curve_json(env.slug, group, curve, budgets, [env.slug]))
        _tables(result, data, env, runs, scores, final_col, col_of, budgets, per_group_env, e)
    for g, by_env in sorted(per_group_env.items(), key=lambda item: data.groups[item[0]].key):
        if (overall := _overall_json(data, g, by_env, budgets)) is not None:
            result.curves.append(overall)
    return result


def _group_json(group: GroupInfo) -> dict[str, Any]:
    return {
        "key": group.key,
        "kind": group.kind,
        "label": group.label,
        "agent_name": group.agent_name,
        "agent_model": group.agent_model,
        "agent_scaffold": group.agent_scaffold,
    }
