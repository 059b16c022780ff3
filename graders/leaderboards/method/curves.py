"""One group's curve in one environment: how each run's length is read, point values and bootstrap replicates."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from graders.leaderboards.method._shared import (
    _SLACK,
    FloatArray,
    IntArray,
)
from graders.leaderboards.method.definitions import _max_cdf, budget_k

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
