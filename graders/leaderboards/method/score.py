"""score_r(t) for every run at every time of interest."""

from __future__ import annotations

import numpy as np

from environments.registry import AGG_LAST, AGG_MAX, AGG_MIN
from graders.leaderboards.method._shared import (
    FloatArray,
    IntArray,
)
from graders.leaderboards.method.definitions import normalise


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
    flat = np.full(n_runs * m, np.nan)
    flat[cell[last]] = value[last]
    placed = flat.reshape(n_runs, m)
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
