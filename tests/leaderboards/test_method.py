"""The leaderboard method (graders.leaderboards.method): hand-computed examples and hypothesis properties."""

from __future__ import annotations

import itertools
from fractions import Fraction
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from environments.models import Environment
from graders import services as grading
from graders.leaderboards import method
from graders.leaderboards.method import HOUR, EnvironmentInfo, GroupInfo, LeaderboardInput

# lower is better, min: normalised = (10 − raw)/10
LOWER_MIN = {"start": 10.0, "reference": 0.0, "aggregation": "min"}


def _matrix(entries: list[tuple[int, float, float]], n_runs: int, times_h: list[float], **env: object) -> np.ndarray:
    run = np.array([e[0] for e in entries], dtype=np.int64)
    elapsed = np.array([e[1] * HOUR for e in entries], dtype=float)
    raw = np.array([e[2] for e in entries], dtype=float)
    return method.score_matrix(
        entry_run=run,
        entry_elapsed=elapsed,
        entry_raw=raw,
        n_runs=n_runs,
        times=np.array(times_h) * HOUR,
        **env,  # type: ignore[arg-type]
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


def test_expected_best_of_k_hand_computed() -> None:
    # Pairs of {0.1, 0.5, 0.9}: maxima 0.5, 0.9, 0.9.
    assert method.expected_best_of_k([0.9, 0.1, 0.5], 2) == pytest.approx((0.5 + 0.9 + 0.9) / 3)
    assert method.expected_best_of_k([0.9, 0.1, 0.5], 1) == pytest.approx(0.5)


def test_expected_best_of_k_with_ties() -> None:
    # Six pairs of {0.2, 0.2, 0.7, 0.7}: only (0.2, 0.2) has max 0.2.
    assert method.expected_best_of_k([0.2, 0.7, 0.2, 0.7], 2) == pytest.approx((0.2 + 5 * 0.7) / 6)


def test_expected_best_of_k_when_n_equals_k_is_the_max() -> None:
    assert method.expected_best_of_k([0.3, 0.1, 0.8], 3) == pytest.approx(0.8)


def test_expected_best_of_k_says_so_when_there_are_fewer_runs_than_k() -> None:
    assert method.expected_best_of_k([0.3, 0.1], 3) is None


def test_expected_best_of_k_matches_the_binomial_formula_exactly_for_small_n() -> None:
    scores = [0.05, 0.4, 0.4, 0.1, 0.9, 0.33, 0.7]
    for k in range(1, 8):
        brute = np.mean([max(c) for c in itertools.combinations(scores, k)])
        assert method.expected_best_of_k(scores, k) == pytest.approx(brute, abs=1e-12)


def test_expected_best_of_k_is_stable_for_five_thousand_runs() -> None:
    # For scores 0..n−1, E[max of k] = k(n+1)/(k+1) − 1; C(5000, 2500) overflows a float by far.
    n = 5000
    for k in (1, 2, 100, 2500, 4999, 5000):
        exact = Fraction(k * (n + 1), k + 1) - 1
        assert method.expected_best_of_k(np.arange(n, dtype=float), k) == pytest.approx(float(exact), rel=1e-12)
    # And the cumulative form against exact integers for a mid-size case.
    cdf = method._max_cdf(300, 17)
    assert cdf[200] == pytest.approx(comb(200, 17) / comb(300, 17), rel=1e-12)


def test_budget_k_is_floor_of_budget_over_run_length() -> None:
    assert method.budget_k(2 * HOUR, 8 * HOUR) == 1
    assert method.budget_k(8 * HOUR, 8 * HOUR) == 1
    assert method.budget_k(15.9 * HOUR, 8 * HOUR) == 1
    assert method.budget_k(16 * HOUR, 8 * HOUR) == 2
    assert method.budget_k(64 * HOUR, 8 * HOUR) == 8
    assert method.budget_k(64 * HOUR, 2 * HOUR) == 32


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


def _curve(result: method.LeaderboardResult, environment: str, group: str) -> dict[float, dict]:
    curve = next(c for c in result.curves if c["environment"] == environment and c["group"] == group)
    return {p["budget_hours"]: p for p in curve["points"]}


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


# --- properties -------------------------------------------------------------------------------------

scores_st = st.lists(st.floats(min_value=0, max_value=3, allow_nan=False), min_size=1, max_size=30)


@given(scores=scores_st, data=st.data())
def test_best_of_k_lies_between_the_mean_and_the_max(scores: list[float], data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=1, max_value=len(scores)))
    value = method.expected_best_of_k(scores, k)
    assert value is not None
    assert np.mean(scores) - 1e-9 <= value <= max(scores) + 1e-9


@given(scores=scores_st)
def test_best_of_k_never_decreases_with_k(scores: list[float]) -> None:
    values = [method.expected_best_of_k(scores, k) for k in range(1, len(scores) + 1)]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(values))


log_st = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=8 * HOUR),
        st.one_of(st.floats(min_value=-1, max_value=2), st.just(float("nan"))),
    ),
    max_size=12,
)


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


# --- runs of mixed lengths ---------------------------------------------------------------------------

MIXED = [
    # env0, humans, aggregation max, normalised = raw. L = 8 h (the most common length).
    (0, 0, 4.0, [(1.0, 0.2), (3.0, 0.4)]),  # shorter: scored at L, its end
    (0, 0, 8.0, [(2.0, 0.3), (6.0, 0.5)]),
    (0, 0, 8.0, [(1.0, 0.1), (7.5, 0.6)]),
    (0, 0, 8 + 20 / 60, [(3.0, 0.2), (8 + 10 / 60, 0.9)]),  # overran by 20 min: scored at its end
    (0, 0, 72.0, [(5.0, 0.35), (30.0, 0.95)]),  # three days: read at L
    # env1: a three-day run whose late score the old rule counted between L and 2 L.
    (1, 0, 8.0, [(7.0, 0.2)]),
    (1, 0, 8.0, [(7.0, 0.3)]),
    (1, 0, 72.0, [(5.0, 0.1), (12.0, 0.9)]),
]
B13 = 2 ** (15 / 4)  # 13.45 h, the grid point between L and 2 L


def test_runs_of_mixed_lengths_hand_computed_at_2_8_13_16_and_32_hours() -> None:
    result = method.leaderboard_compute(_input(MIXED), resamples=0, overrun_grace_seconds=3600)
    env0 = _curve(result, "env0", "humans")
    assert env0[2.0]["value"] == pytest.approx((0.2 + 0.3 + 0.1 + 0 + 0) / 5)
    assert env0[8.0]["value"] == pytest.approx((0.4 + 0.5 + 0.6 + 0.2 + 0.35) / 5)
    # Beyond L one whole run: s = {0.4, 0.5, 0.6, 0.9 (at its end), 0.35 (at L)}.
    assert env0[B13]["k"] == 1
    assert env0[B13]["value"] == pytest.approx((0.4 + 0.5 + 0.6 + 0.9 + 0.35) / 5)
    # Best of 2 of s sorted 0.35, 0.4, 0.5, 0.6, 0.9: P(max = s_(i)) = (i − 1)/10.
    assert env0[16.0]["value"] == pytest.approx((0.4 * 1 + 0.5 * 2 + 0.6 * 3 + 0.9 * 4) / 10)
    # Best of 4: P(max = s_(i)) = C(i − 1, 3)/5.
    assert env0[32.0]["value"] == pytest.approx((0.6 * 1 + 0.9 * 4) / 5)
    curve0 = next(c for c in result.curves if c["environment"] == "env0")
    assert curve0["run_counts"] == {"at_length": 2, "shorter": 1, "overran": 1, "truncated": 1}

    env1 = _curve(result, "env1", "humans")
    assert env1[8.0]["value"] == pytest.approx((0.2 + 0.3 + 0.1) / 3)
    # Not (0.2 + 0.3 + 0.9)/3, the three-day run's score at 13.45 h: that would fall to 0.267 at 16 h.
    assert env1[B13]["value"] == pytest.approx((0.2 + 0.3 + 0.1) / 3)
    assert env1[16.0]["value"] == pytest.approx((0.2 + 0.3 + 0.3) / 3)
    assert env1[32.0]["value"] is None  # 3 runs, best of 4

    overall = _curve(result, "overall", "humans")
    assert overall[8.0]["value"] == pytest.approx(((0.4 + 0.5 + 0.6 + 0.2 + 0.35) / 5 + 0.2) / 2)
    assert overall[B13]["value"] == pytest.approx((0.55 + 0.2) / 2)
    assert overall[16.0]["value"] == pytest.approx((0.68 + 0.8 / 3) / 2)
    assert overall[32.0]["value"] is None


def test_without_grace_an_overrun_is_read_at_the_run_length_like_any_longer_run() -> None:
    result = method.leaderboard_compute(_input(MIXED), resamples=0, overrun_grace_seconds=0)
    env0 = _curve(result, "env0", "humans")
    assert env0[B13]["value"] == pytest.approx((0.4 + 0.5 + 0.6 + 0.2 + 0.35) / 5)
    curve0 = next(c for c in result.curves if c["environment"] == "env0")
    assert curve0["run_counts"] == {"at_length": 2, "shorter": 1, "overran": 0, "truncated": 2}


mixed_run_st = st.tuples(
    st.sampled_from([4.0, 8.0, 8.0, 8 + 20 / 60, 72.0]),
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=1),  # elapsed, as a fraction of the run's length
            st.one_of(st.floats(min_value=-1, max_value=2), st.just(float("nan"))),
        ),
        max_size=8,
    ),
)


@settings(max_examples=80, deadline=None)
@given(
    runs=st.lists(mixed_run_st, min_size=1, max_size=7),
    aggregation=st.sampled_from(["min", "max"]),
    grace=st.sampled_from([0.0, 3600.0]),
)
def test_the_curve_never_decreases_with_budget_over_runs_of_mixed_lengths(
    runs: list[tuple[float, list[tuple[float, float]]]], aggregation: str, grace: float
) -> None:
    start, reference = (1.0, 0.0) if aggregation == "min" else (0.0, 1.0)
    data = _input([(0, 0, length, [(f * length, raw) for f, raw in log]) for length, log in runs], n_envs=1)
    data.environments[0] = EnvironmentInfo("env0", "Env 0", start, reference, aggregation)
    result = method.leaderboard_compute(data, resamples=0, overrun_grace_seconds=grace)
    for curve in result.curves:
        values = [p["value"] for p in curve["points"] if p["value"] is not None]
        assert all(b >= a - 1e-12 for a, b in itertools.pairwise(values)), values


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
