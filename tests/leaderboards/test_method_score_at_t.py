"""The leaderboard method's score at t (graders.leaderboards.method.score_matrix): hand-computed and a property."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from environments.models import Environment
from graders import services as grading
from graders.leaderboards import method
from graders.leaderboards.method import HOUR
from tests.leaderboards.method_support import log_st

LOWER_MIN = {"start": 10.0, "reference": 0.0, "aggregation": "min"}


def _matrix(entries: list[tuple[int, float, float]], n_runs: int, times_h: list[float], **env: Any) -> np.ndarray:
    run = np.array([e[0] for e in entries], dtype=np.int64)
    elapsed = np.array([e[1] * HOUR for e in entries], dtype=float)
    raw = np.array([e[2] for e in entries], dtype=float)
    return method.score_matrix(
        entry_run=run,
        entry_elapsed=elapsed,
        entry_raw=raw,
        n_runs=n_runs,
        times=np.array(times_h) * HOUR,
        **env,
    )


def test_score_at_t_is_the_normalised_running_best_of_valid_entries_up_to_t() -> None:
    log = [(0, 0.0, 10.0), (0, 1.0, 6.0), (0, 2.0, np.nan), (0, 3.0, 8.0), (0, 5.0, 2.0), (0, 7.0, 12.0)]
    s = _matrix(log, 1, [0.5, 1.0, 2.5, 4.0, 6.0, 8.0], **LOWER_MIN)
    # t = 1 h counts the entry scored at exactly 1 h; the NaN at 2 h and the worse 8.0 at 3 h change nothing.
    assert s[0].tolist() == pytest.approx([0.0, 0.4, 0.4, 0.4, 0.8, 0.8])


def test_a_run_without_a_valid_entry_by_t_scores_zero() -> None:
    log = [(0, 1.0, np.nan), (0, 3.0, 5.0), (1, 0.5, np.nan)]
    s = _matrix(log, 3, [0.5, 2.0, 4.0], **LOWER_MIN)
    assert s.ravel().tolist() == pytest.approx([0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])


def test_scores_worse_than_the_start_clip_to_zero_and_better_than_reference_exceed_one() -> None:
    log = [(0, 1.0, 15.0), (1, 1.0, -2.0)]
    s = _matrix(log, 2, [2.0], **LOWER_MIN)
    assert s[:, 0].tolist() == pytest.approx([0.0, 1.2])


def test_last_aggregation_takes_the_latest_valid_entry_even_when_it_is_worse() -> None:
    # ai_rd_small_scaling_law: higher is better, 0.24 → 0.84, "last".
    log = [(0, 1.0, 0.54), (0, 2.0, 0.84), (0, 3.0, 0.60), (0, 4.0, np.nan)]
    s = _matrix(log, 1, [1.5, 2.5, 8.0], start=0.24, reference=0.84, aggregation="last")
    assert s[0].tolist() == pytest.approx([0.5, 1.0, 0.6])


def test_max_aggregation_for_higher_is_better() -> None:
    log = [(0, 1.0, 0.60), (0, 2.0, 0.57), (0, 3.0, 0.85)]
    s = _matrix(log, 1, [2.0, 3.0], start=0.54, reference=0.85, aggregation="max")
    assert s[0].tolist() == pytest.approx([0.06 / 0.31, 1.0])


@settings(max_examples=60, deadline=None)
@given(log=log_st, slug=st.sampled_from(["ai_rd_triton_cumsum", "ai_rd_nanogpt_chat_rl", "ai_rd_small_scaling_law"]))
def test_score_at_t_agrees_with_the_grading_aggregate_and_normalisation(
    log: list[tuple[float, float]], slug: str
) -> None:
    """The vector code is the same definition as graders.services.aggregate + Environment.normalise."""
    from environments.registry import BY_SLUG

    spec = BY_SLUG[slug]
    env = Environment(
        slug=slug,
        direction=spec.direction,
        aggregation=spec.aggregation,
        starting_score=spec.starting_score,
        reference_score=spec.reference_score,
    )
    times = np.array([0.5, 1, 2, 4, 6, 8]) * HOUR
    s = method.score_matrix(
        entry_run=np.zeros(len(log), dtype=np.int64),
        entry_elapsed=np.array([t for t, _ in log], dtype=float),
        entry_raw=np.array([raw for _, raw in log], dtype=float),
        n_runs=1,
        times=times,
        start=env.starting_score,
        reference=env.reference_score,
        aggregation=env.aggregation,
    )
    ordered = sorted(log, key=lambda e: e[0])  # the log by time (stable: equal times keep log order)
    for j, t in enumerate(times):
        raw = grading.aggregate([r for e, r in ordered if e <= t], env.aggregation)
        expected = grading.normalise(env, raw)
        assert s[0, j] == pytest.approx(0.0 if expected is None else expected, abs=1e-12)
