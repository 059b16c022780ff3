"""The leaderboard method over runs of mixed lengths (shorter, overrunning, days long): hand-computed and a property."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.leaderboards import method
from graders.leaderboards.method import EnvironmentInfo
from tests.leaderboards.method_support import _curve, _input

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
