"""Threshold, filtered share and the exact (Clopper–Pearson) interval, on hand-computed examples."""

from __future__ import annotations

import math

import pytest

from review.classifier import thresholds

INJURIOUS = [0.9, 0.8, 0.6, 0.3, 0.1]
SAFE = [0.02, 0.05, 0.15, 0.2, 0.25, 0.4, 0.5]


def _binomial_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def _bisect(f, lo: float, hi: float) -> float:
    for _ in range(200):
        mid = (lo + hi) / 2
        if (f(lo) > 0) == (f(mid) > 0):
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def test_threshold_for_a_target_recall_is_the_right_order_statistic() -> None:
    # 5 injurious examples; 80 % recall needs 4 at or above the threshold: the 4th highest, 0.3.
    assert thresholds.threshold_for_recall(INJURIOUS, 0.8) == 0.3
    # 100 %: the lowest; 81 % needs ceil(4.05) = 5 as well; 20 %: the highest alone.
    assert thresholds.threshold_for_recall(INJURIOUS, 1.0) == 0.1
    assert thresholds.threshold_for_recall(INJURIOUS, 0.81) == 0.1
    assert thresholds.threshold_for_recall(INJURIOUS, 0.2) == 0.9


def test_threshold_for_recall_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="target recall"):
        thresholds.threshold_for_recall(INJURIOUS, 0)
    with pytest.raises(ValueError, match="no injurious"):
        thresholds.threshold_for_recall([], 0.9)


def test_clopper_pearson_matches_the_interval_solved_by_hand() -> None:
    low, high = thresholds.clopper_pearson(1, 6)
    # Lower end: P(X ≥ 1) = 1 − (1 − p)^6 = 0.025; upper end: P(X ≤ 1) = 0.025, solved by bisection.
    assert low == pytest.approx(1 - 0.975 ** (1 / 6), rel=1e-6)
    assert high == pytest.approx(_bisect(lambda p: _binomial_cdf(1, 6, p) - 0.025, 0.0, 1.0), rel=1e-6)
    assert high == pytest.approx(0.6412, abs=1e-4)
    # No events: [0, 1 − 0.025^(1/n)] (the exact "rule of three" bound's two-sided cousin).
    assert thresholds.clopper_pearson(0, 20) == pytest.approx((0.0, 1 - 0.025 ** (1 / 20)))
    assert thresholds.clopper_pearson(20, 20) == pytest.approx((0.025 ** (1 / 20), 1.0))
    with pytest.raises(ValueError, match="positive"):
        thresholds.clopper_pearson(0, 0)


def test_threshold_rows_filtered_share_recall_and_unsafe_rate_by_hand() -> None:
    labelled = INJURIOUS + SAFE
    flags = [True] * len(INJURIOUS) + [False] * len(SAFE)
    everything = [0.1, 0.2, 0.3, 0.35, 0.9]
    row, high_row, none_row = thresholds.threshold_rows(
        [0.3, 0.95, 0.01], labelled_scores=labelled, labelled_injurious=flags, all_scores=everything
    )
    # At 0.3: 0.3, 0.35, 0.9 are filtered (score ≥ threshold): 3 of 5.
    assert row.filtered_fraction == pytest.approx(3 / 5)
    # Below 0.3 get through: injurious 0.1 and safe 0.02 0.05 0.15 0.2 0.25 → 1 unsafe in 6.
    assert (row.passed, row.passed_injurious) == (6, 1)
    assert row.unsafe_rate == pytest.approx(1 / 6)
    assert (row.ci_low, row.ci_high) == pytest.approx(thresholds.clopper_pearson(1, 6))
    assert row.recall == pytest.approx(4 / 5)
    # 0.95 lets everything through: 5 unsafe in 12, nothing filtered.
    assert high_row.filtered_fraction == 0
    assert (high_row.passed, high_row.passed_injurious, high_row.recall) == (12, 5, 0)
    # 0.01 filters everything: no labelled example gets through, so there is no estimate.
    assert none_row.filtered_fraction == 1
    assert none_row.passed == 0
    assert none_row.unsafe_rate is None
    assert none_row.ci_low is None


def test_heldout_metrics_by_hand() -> None:
    scores = [0.9, 0.4, 0.5, 0.1]
    labels = [True, True, False, False]
    metrics = thresholds.heldout_metrics(scores, labels, target_recall=1.0)
    # Pairs (pos, neg): 0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1 → 3 of 4.
    assert metrics["auroc"] == pytest.approx(0.75)
    assert metrics["accuracy"] == pytest.approx(2 / 4)  # 0.9 right, 0.4 wrong, 0.5 wrong, 0.1 right
    assert metrics["recall_at_0_5"] == pytest.approx(0.5)
    assert metrics["threshold_at_target"] == 0.4
    assert metrics["recall_at_threshold"] == 1.0
    assert metrics["precision_at_threshold"] == pytest.approx(2 / 3)  # 0.9, 0.4 and 0.5 flagged
    assert metrics["filtered_at_threshold"] == pytest.approx(3 / 4)


def test_auroc_counts_ties_as_half_and_needs_both_classes() -> None:
    assert thresholds.auroc([0.5, 0.5], [True, False]) == pytest.approx(0.5)
    assert thresholds.auroc([0.5, 0.6], [True, True]) is None


def test_candidate_thresholds_include_the_extra_ones_in_order() -> None:
    grid = thresholds.candidate_thresholds([0.4321, 1.5])
    assert 0.4321 in grid
    assert 1.5 not in grid
    assert grid == sorted(grid)
