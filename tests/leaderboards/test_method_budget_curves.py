"""The leaderboard method's budget curves, overall means, bootstrap and tables: hand-computed and a property."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.leaderboards import method
from graders.leaderboards.method import HOUR, EnvironmentInfo
from tests.leaderboards.method_support import _curve, _input, log_st


def test_budget_curve_uses_score_at_budget_below_run_length_and_best_of_k_above() -> None:
    data = _input(
        [
            (0, 0, 8.0, [(1.0, 0.2), (4.0, 0.6)]),
            (0, 0, 8.0, [(3.0, 0.3), (7.0, 0.9)]),
            (0, 0, 8.0, [(0.5, 0.1)]),
        ],
        n_envs=1,
    )
    points = _curve(method.leaderboard_compute(data, resamples=50, seed=1), "env0", "humans")
    assert points[2.0]["value"] == pytest.approx((0.2 + 0 + 0.1) / 3)
    assert points[8.0]["value"] == pytest.approx((0.6 + 0.9 + 0.1) / 3)
    # 16 h = best of 2 of {0.1, 0.6, 0.9}: maxima 0.6, 0.9, 0.9.
    assert points[16.0]["k"] == 2
    assert points[16.0]["value"] == pytest.approx((0.6 + 0.9 + 0.9) / 3)
    assert points[16.0]["ci_low"] <= points[16.0]["value"] <= points[16.0]["ci_high"]
    # 32 h needs 4 runs of 8 h; there are 3.
    assert points[32.0]["value"] is None
    assert points[32.0]["ci_low"] is None
    assert "n < k" in points[32.0]["note"]


def test_overall_is_the_mean_over_environments_where_the_group_has_runs() -> None:
    data = _input(
        [
            (0, 0, 8.0, [(1.0, 0.4)]),
            (1, 0, 8.0, [(1.0, 0.8)]),
            (1, 0, 8.0, [(1.0, 0.2)]),
            (2, 1, 8.0, [(1.0, 0.3)]),  # env2 has only the agent: not part of the humans' mean
        ],
        n_envs=3,
    )
    result = method.leaderboard_compute(data, resamples=20, seed=3)
    overall = next(c for c in result.curves if c["environment"] == "overall" and c["group"] == "humans")
    assert overall["environments"] == ["env0", "env1"]
    at8 = next(p for p in overall["points"] if p["budget_hours"] == 8.0)
    assert at8["value"] == pytest.approx((0.4 + (0.8 + 0.2) / 2) / 2)
    # 16 h: env0 has one run, best-of-2 undefined there, so the overall says so too.
    at16 = next(p for p in overall["points"] if p["budget_hours"] == 16.0)
    assert at16["value"] is None
    assert "env0" in at16["note"]


def test_run_length_of_a_group_is_its_most_common_and_decides_k() -> None:
    data = _input([(0, 1, 2.0, [(1.0, 0.5)]), (0, 1, 2.0, [(2.0, 0.7)]), (0, 1, 8.0, [(6.0, 0.9)])], n_envs=1)
    curve = next(c for c in method.leaderboard_compute(data, resamples=0).curves if c["environment"] == "env0")
    assert curve["run_length_hours"] == 2.0
    points = {p["budget_hours"]: p for p in curve["points"]}
    # 4 h with L = 2 h: best of 2 of each run's score at 2 h {0.5, 0.7, 0}: maxima 0.7, 0.5, 0.7.
    assert points[4.0]["k"] == 2
    assert points[4.0]["value"] == pytest.approx((0.7 + 0.5 + 0.7) / 3)


def test_bootstrap_replicates_equal_a_plain_resampling_loop_with_the_same_draws() -> None:
    rng_scores = np.random.default_rng(7)
    scores = rng_scores.random((12, 3))  # columns: score at 2 h, at 8 h (= L), at ∞
    scores[:, 2] = scores[:, 1]
    budgets = np.array([2.0, 8.0, 16.0, 24.0, 64.0]) * HOUR
    curve = method.group_curve(
        scores,
        budget_columns=[0, 1, 1, 1, 1],
        at_length=scores[:, 1],
        budgets=budgets,
        length=8 * HOUR,
        resamples=40,
        rng=np.random.default_rng(11),
    )
    # The same draws, run by run: sorted by the score at L as group_curve does.
    ordered = scores[np.argsort(scores[:, 1], kind="stable")]
    draws = np.random.default_rng(11).integers(0, 12, size=(40, 12))
    for r in range(40):
        sample = ordered[draws[r]]
        assert curve.boot[r, 0] == pytest.approx(sample[:, 0].mean())
        assert curve.boot[r, 1] == pytest.approx(sample[:, 1].mean())
        assert curve.boot[r, 2] == pytest.approx(method.expected_best_of_k(sample[:, 1], 2))
        assert curve.boot[r, 3] == pytest.approx(method.expected_best_of_k(sample[:, 1], 3))
        assert curve.boot[r, 4] == pytest.approx(method.expected_best_of_k(sample[:, 1], 8))


def test_the_bootstrap_is_seeded() -> None:
    data = _input([(0, 0, 8.0, [(1.0, x)]) for x in (0.1, 0.5, 0.2, 0.9, 0.4)], n_envs=1)
    a = method.leaderboard_compute(data, resamples=100, seed=5).to_json()
    b = method.leaderboard_compute(data, resamples=100, seed=5).to_json()
    c = method.leaderboard_compute(data, resamples=100, seed=6).to_json()
    assert a == b
    assert a["curves"] != c["curves"]


def test_tables_have_one_row_per_human_participant_and_per_agent() -> None:
    data = _input(
        [
            (0, 0, 8.0, [(1.0, 0.3), (6.0, 0.5)]),
            (0, 0, 8.0, [(3.0, 0.7)]),
            (0, 1, 8.0, [(1.0, 0.2)]),
            (0, 1, 8.0, [(1.0, 0.6)]),
        ],
        n_envs=1,
    )
    data.run_participant = ["ada", "ada", "a", "a"]
    data.run_user = [1, 1, None, None]
    result = method.leaderboard_compute(data, resamples=0)
    assert result.humans == [
        {
            "environment": "env0",
            "participant": "ada",
            "user_id": 1,
            "attempts": 2,
            "best": 0.7,
            "at_2h": 0.3,
            "at_8h": 0.7,
        }
    ]
    [agent] = result.agents
    assert agent["runs"] == 2
    assert agent["mean"] == pytest.approx(0.4)
    assert agent["best"] == pytest.approx(0.6)
    assert len(result.runs) == 4


@settings(max_examples=60, deadline=None)
@given(logs=st.lists(log_st, min_size=1, max_size=6), aggregation=st.sampled_from(["min", "max"]))
def test_the_curve_never_decreases_with_budget(logs: list[list[tuple[float, float]]], aggregation: str) -> None:
    # "min" on a lower-is-better and "max" on a higher-is-better environment: the RE-Bench pairings.
    start, reference = (1.0, 0.0) if aggregation == "min" else (0.0, 1.0)
    runs = [(0, 0, 8.0, [(t / HOUR, raw) for t, raw in log]) for log in logs]
    data = _input(runs, n_envs=1)
    data.environments[0] = EnvironmentInfo("env0", "Env 0", start, reference, aggregation)
    result = method.leaderboard_compute(data, resamples=0)
    for curve in result.curves:
        values = [p["value"] for p in curve["points"] if p["value"] is not None]
        assert all(b >= a - 1e-12 for a, b in itertools.pairwise(values))


def test_overall_averages_every_overall_environment_and_marks_a_group_that_misses_some() -> None:
    data = _input(
        [
            (0, 0, 8.0, [(1.0, 0.4)]),
            (1, 0, 8.0, [(1.0, 0.6)]),
            (2, 0, 8.0, [(1.0, 0.8)]),
            (0, 1, 8.0, [(1.0, 0.3)]),  # the agent: env0 and env3 only
            (3, 1, 8.0, [(1.0, 0.9)]),  # env3 is not one of the overall environments
        ],
        n_envs=4,
    )
    data.overall_environments = ["env0", "env1", "env2"]
    result = method.leaderboard_compute(data, resamples=0)
    humans = next(c for c in result.curves if c["environment"] == "overall" and c["group"] == "humans")
    agent = next(c for c in result.curves if c["environment"] == "overall" and c["group"] == "agent:a||")
    assert (humans["complete"], humans["coverage"], humans["missing"]) == (True, [3, 3], [])
    assert _curve(result, "overall", "humans")[8.0]["value"] == pytest.approx((0.4 + 0.6 + 0.8) / 3)
    assert (agent["complete"], agent["coverage"], agent["missing"]) == (False, [1, 3], ["env1", "env2"])
    assert agent["environments"] == ["env0"]  # env3's 0.9 is in no overall mean
    assert _curve(result, "overall", "agent:a||")[8.0]["value"] == pytest.approx(0.3)
