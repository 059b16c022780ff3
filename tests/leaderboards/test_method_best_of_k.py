"""The leaderboard method's expected best of k runs and the k of a budget: hand-computed and properties."""

from __future__ import annotations

import itertools
from fractions import Fraction
from math import comb

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from graders.leaderboards import method
from graders.leaderboards.method import HOUR


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


scores_st = st.lists(st.floats(min_value=0, max_value=3, allow_nan=False), min_size=1, max_size=30)


@given(scores=scores_st, data=st.data())
def test_best_of_k_lies_between_the_mean_and_the_max(scores: list[float], data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=1, max_value=len(scores)))
    value = method.expected_best_of_k(scores, k)
    assert value is not None
    assert np.mean(scores) - 1e-9 <= value <= max(scores) + 1e-9


@given(scores=scores_st)
def test_best_of_k_never_decreases_with_k(scores: list[float]) -> None:
    values = []
    for k in range(1, len(scores) + 1):
        value = method.expected_best_of_k(scores, k)
        assert value is not None
        values.append(value)
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(values))
