"""The leaderboard method in plain numpy: score_r(t), expected best-of-k, budget curves, bootstrap CIs.

docs/leaderboard-method.md states it in words; this module is that text, vectorised. Nothing here
touches Django: selectors.py turns the database into `LeaderboardInput`, and the benchmark builds one
directly.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from environments.registry import AGG_LAST, AGG_MAX, AGG_MIN

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

HOUR = 3600.0
# Total budgets from 30 min to 64 h, four per doubling; 2, 8 and 32 h are on the grid exactly.
BUDGET_HOURS: tuple[float, ...] = tuple(2.0 ** (j / 4) for j in range(-4, 25))
HIGHLIGHT_HOURS: tuple[float, ...] = (2.0, 8.0, 32.0)
HUMANS = "humans"
CI_LEVEL = 0.95
# B ≤ L and k = ⌊B/L⌋ are decided with this relative slack, so 16 h / 8 h is 2 whatever the float rounding.
_SLACK = 1e-9


# --- the definitions, one run and one sample at a time (the reference the vectorised code must match) ---


def normalise(raw: FloatArray, *, start: float | FloatArray, reference: float | FloatArray) -> FloatArray:
    """(raw − start)/(reference − start), clipped below at 0: the vector form of Environment.normalise."""
    return np.maximum(0.0, (np.asarray(raw, dtype=float) - start) / (reference - start))


def expected_best_of_k(scores: Sequence[float] | FloatArray, k: int) -> float | None:
    """E[max of k scores drawn without replacement from the n given], exactly; None when n < k.

    With s_(1) ≤ … ≤ s_(n) sorted, P(max = s_(i)) = C(i−1, k−1)/C(n, k). The cumulative form
    F(m) = C(m, k)/C(n, k) = Π_{j=m+1..n} (j − k)/j is a product of factors in [0, 1], so it neither
    overflows nor loses precision for n in the thousands (binomials themselves would overflow).
    """
    s = np.sort(np.asarray(scores, dtype=float))
    n = s.size
    if k < 1:
        raise ValueError("k must be at least 1")
    if n < k:
        return None
    cdf = _max_cdf(n, k)
    return float(np.dot(np.diff(cdf), s))


def _max_cdf(n: int, k: int) -> FloatArray:
    """F(m) = C(m, k)/C(n, k) for m = 0..n: P(the max of k draws sits at sorted position ≤ m)."""
    j = np.arange(1, n + 1, dtype=float)
    factors = np.maximum(j - k, 0.0) / j
    cdf = np.ones(n + 1)
    cdf[:n] = np.cumprod(factors[::-1])[::-1]
    return cdf


def budget_k(budget_seconds: float, run_length_seconds: float) -> int:
    """k = ⌊B/L⌋ runs for B > L (each scored at its end); 1 (one run, scored at B) for B ≤ L."""
    if budget_seconds <= run_length_seconds * (1 + _SLACK):
        return 1
    return math.floor(budget_seconds / run_length_seconds + _SLACK)


# --- inputs -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvironmentInfo:
    slug: str
    title: str
    starting_score: float
    reference_score: float
    aggregation: str
    configuration: str = ""  # the configuration version these constants are, e.g. "full v2"


@dataclass(frozen=True)
class GroupInfo:
    """Who a curve is for: all humans together, or one agent (name, model, scaffold)."""

    key: str
    kind: str
    label: str
    agent_name: str = ""
    agent_model: str = ""
    agent_scaffold: str = ""


@dataclass
class LeaderboardInput:
    """Columnar runs and score-log entries. Entries are in log order within each run."""

    environments: list[EnvironmentInfo]
    groups: list[GroupInfo]
    run_env: IntArray
    run_group: IntArray
    run_length: FloatArray  # seconds
    run_id: list[Any]
    run_participant: list[str]  # expert or agent label shown in tables
    run_user: list[int | None]  # the local expert, for "experts see their own rows"
    entry_run: IntArray
    entry_elapsed: FloatArray  # seconds of working time
    entry_raw: FloatArray  # NaN: invalid
    # The environments the overall curve averages (RE-Bench's seven); empty: every environment here.
    overall_environments: list[str] = field(default_factory=list)
    # The configuration every run here was scored at (one leaderboard per configuration).
    configuration: str = ""
    # Each run's own configuration-version constants; empty: the environment's (EnvironmentInfo).
    run_start: FloatArray = field(default_factory=lambda: np.array([]))
    run_reference: FloatArray = field(default_factory=lambda: np.array([]))

    @property
    def run_count(self) -> int:
        return int(self.run_env.size)


@dataclass
class LeaderboardResult:
    budget_hours: list[float]
    environments: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    curves: list[dict[str, Any]] = field(default_factory=list)
    humans: list[dict[str, Any]] = field(default_factory=list)
    agents: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    resamples: int = 0
    seed: int = 0
    configuration: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "method": "best-of-k by total time budget; docs/leaderboard-method.md",
            "configuration": self.configuration,
            "budget_hours": self.budget_hours,
            "highlight_hours": list(HIGHLIGHT_HOURS),
            "ci_level": CI_LEVEL,
            "resamples": self.resamples,
            "seed": self.seed,
            "environments": self.environments,
            "groups": self.groups,
            "curves": self.curves,
            "humans": self.humans,
            "agents": self.agents,
            "runs": self.runs,
        }


# --- score_r(t) for every run at every time of interest -------------------------------------------


def score_matrix(
    *,
    entry_run: IntArray,
    entry_elapsed: FloatArray,
    entry_raw: FloatArray,
    n_runs: int,
    times: FloatArray,
    start: float | FloatArray,
    reference: float | FloatArray,
    aggregation: str,
) -> FloatArray:
    """S[r, j] = score_r(times[j]) for the runs of one environment (entry_run indexes 0..n_runs−1).

    score_r(t) = the normalised aggregate (min/max/last, in log order) of run r's valid entries with
    elapsed ≤ t, clipped below at 0; 0 when it has none yet. `times` must be sorted ascending.
    `start` and `reference` are one pair for every run, or one value per run (its configuration's).
    """
    m = times.size
    out = np.zeros((n_runs, m))
    valid = np.isfinite(entry_raw)
    run, elapsed, raw = entry_run[valid], entry_elapsed[valid], entry_raw[valid]
    if run.size == 0 or m == 0:
        return out
    # By run, then elapsed; lexsort is stable, so equal times keep log order (what "last" means then).
    order = np.lexsort((elapsed, run))
    run, elapsed, raw = run[order], elapsed[order], raw[order]
    running = _running_aggregate(run, raw, aggregation)
    if np.ndim(start):  # per run: each entry takes its run's constants
        start, reference = np.asarray(start)[run], np.asarray(reference)[run]
    value = normalise(running, start=start, reference=reference)
    first = np.searchsorted(times, elapsed, side="left")  # the entry counts from times[first] on
    inside = first < m
    run, first, value = run[inside], first[inside], value[inside]
    if run.size == 0:
        return out
    cell = run * m + first
    # Several entries can land in one cell; the latest in (run, elapsed) order carries the running aggregate.
    last = np.ones(cell.size, dtype=bool)
    last[:-1] = cell[1:] != cell[:-1]
    placed = np.full(n_runs * m, np.nan)
    placed[cell[last]] = value[last]
    placed = placed.reshape(n_runs, m)
    # Forward-fill along time: score_r is a step function of t.
    idx = np.where(np.isnan(placed), -1, np.arange(m))
    np.maximum.accumulate(idx, axis=1, out=idx)
    rows = np.arange(n_runs)[:, None]
    filled = placed[rows, np.maximum(idx, 0)]
    return np.where(idx >= 0, filled, 0.0)


def _running_aggregate(run: IntArray, raw: FloatArray, aggregation: str) -> FloatArray:
    """Per-run running min/max/last of raw scores, entries sorted by run then time."""
    if aggregation == AGG_LAST:
        return raw
    if aggregation not in (AGG_MIN, AGG_MAX):
        raise ValueError(f"unknown aggregation {aggregation!r}")
    key = -raw if aggregation == AGG_MIN else raw
    n = key.size
    by_key = np.argsort(key, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[by_key] = np.arange(n)
    # Offsetting each run by n makes one running maximum restart at every run's first entry.
    offset = run.astype(np.int64) * n
    best = np.maximum.accumulate(rank + offset) - offset
    return raw[by_key[best]]


# --- curves and bootstrap ------------------------------------------------------------------------


RUN_COUNT_KINDS = ("at_length", "shorter", "overran", "truncated")


def run_end_columns(
    run_lengths: FloatArray, length: float, *, grace: float, col_of: dict[float, int]
) -> tuple[IntArray, dict[str, int]]:
    """Which time each run is scored at as one whole run (s_r), and how many runs were read each way.

    - at_length: its length is the group's L: scored at L.
    - shorter (a 4-hour run among 8-hour ones): scored at L, which is its end (it has nothing later).
    - overran (longer than L by at most `grace`: a clock that ran on for minutes): scored at its own
      end, as the run it was; it still counts as one run of length L.
    - truncated (longer by more: a multi-day run): read at L, what it had reached after L of work.
    """
    slack = length * _SLACK
    at_l = col_of[float(length)]
    overran = (run_lengths > length + slack) & (run_lengths <= length + grace + slack)
    columns = np.array([col_of[float(x)] if over else at_l for x, over in zip(run_lengths, overran, strict=True)])
    counts = {
        "at_length": int(np.sum(np.abs(run_lengths - length) <= slack)),
        "shorter": int(np.sum(run_lengths < length - slack)),
        "overran": int(np.sum(overran)),
        "truncated": int(np.sum(run_lengths > length + grace + slack)),
    }
    return columns.astype(np.int64), counts


def _mode_length(lengths: FloatArray) -> float:
    """The group's run length L: the most common run length, the longer one on a tie."""
    values, counts = np.unique(lengths, return_counts=True)
    return float(values[len(values) - 1 - int(np.argmax(counts[::-1]))])


def _seed_for(seed: int, *parts: str) -> np.random.SeedSequence:
    # Stable across processes (unlike hash()), so one environment's CI doesn't move when another is added.
    return np.random.SeedSequence([seed, *(zlib.crc32(p.encode()) for p in parts)])


@dataclass
class _GroupCurve:
    length: float
    n: int
    k: list[int]
    point: list[float | None]
    boot: FloatArray  # resamples × budgets, NaN where undefined
    counts: dict[str, int] = field(default_factory=dict)  # runs by how their length was read (run_counts)


def group_curve(
    scores: FloatArray,
    *,
    budget_columns: Sequence[int],
    at_length: FloatArray,
    budgets: FloatArray,
    length: float,
    resamples: int,
    rng: np.random.Generator,
) -> _GroupCurve:
    """Point values and bootstrap replicates of one group's curve in one environment.

    `scores` is runs × times (from score_matrix); budget_columns[j] is the column of budgets[j].
    `at_length` is each run's s_r, its score as one whole run (run_end_columns): what a budget
    beyond L counts, whether one run fits (k = 1) or several.
    """
    n = scores.shape[0]
    order = np.argsort(at_length, kind="stable")
    scores = scores[order]
    s = at_length[order]
    ks = [budget_k(float(b), length) for b in budgets]
    boot = np.full((resamples, len(budgets)), np.nan)
    one = [j for j, k in enumerate(ks) if k == 1]
    # k = 1: within one run (B ≤ L) each run's score at B; beyond it, one whole run's s_r.
    within = [budgets[j] <= length * (1 + _SLACK) for j in one]
    by_run = (
        np.column_stack([scores[:, budget_columns[j]] if inside else s for j, inside in zip(one, within, strict=True)])
        if one
        else np.zeros((n, 0))
    )
    multi = sorted({k for k in ks if 1 < k <= n})
    # P(max of k draws = sorted position m), m = 1..n, for every k at once: a column per k.
    weights = np.column_stack([np.diff(_max_cdf(n, k)) for k in multi]) if multi else np.zeros((n, 0))
    if resamples:
        # Resampling runs with replacement, as counts per (sorted) run: one bincount, no sort per replicate.
        draws = rng.integers(0, n, size=(resamples, n))
        draws += (np.arange(resamples) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=resamples * n).reshape(resamples, n)
        if one:
            boot[:, one] = (counts.astype(np.float64) @ by_run) / n
        if multi:
            # Each resample, sorted, is s with multiplicities; every row sums to n, so one repeat
            # lays them all out, and one matrix product gives every k's expected best for every replicate.
            resampled = np.repeat(np.tile(s, resamples), counts.ravel()).reshape(resamples, n)
            replicates = resampled @ weights
            for column, k in enumerate(multi):
                boot[:, [j for j, kj in enumerate(ks) if kj == k]] = replicates[:, [column]]
    points: list[float | None] = [None] * len(budgets)
    for column, j in enumerate(one):
        points[j] = float(by_run[:, column].mean())
    values = s @ weights
    for column, k in enumerate(multi):
        for j, kj in enumerate(ks):
            if kj == k:
                points[j] = float(values[column])
    return _GroupCurve(length=length, n=n, k=ks, point=points, boot=boot)


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
        if (curve := _overall_json(data, g, by_env, budgets)) is not None:
            result.curves.append(curve)
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


def _intervals(replicates: FloatArray) -> list[tuple[float | None, float | None]]:
    """Percentile intervals of each column (one budget) of a replicates × budgets matrix, in one call."""
    if replicates.shape[0] == 0:
        return [(None, None)] * replicates.shape[1]
    tail = (1 - CI_LEVEL) / 2 * 100
    bounds = np.percentile(replicates, [tail, 100 - tail], axis=0)
    undefined = np.isnan(replicates).any(axis=0)
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
