"""Pure statistics for the classifier: held-out metrics, the threshold for a target recall, filtered rates.

A completion is filtered out (treated as injurious) when its score is at or above the threshold;
it gets through when its score is below it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact binomial (Clopper–Pearson) interval for k successes in n trials."""
    if n <= 0:
        raise ValueError("n must be positive")
    from scipy.stats import binomtest  # scipy.stats costs ~1 s to import: only where it's used

    interval = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(interval.low), float(interval.high)


def threshold_for_recall(injurious_scores: Sequence[float], target_recall: float) -> float:
    """The highest threshold that still filters out `target_recall` of the injurious examples.

    With P injurious examples, ceil(target · P) of them must score at or above it, so it is the
    ceil(target · P)-th highest injurious score.
    """
    if not 0 < target_recall <= 1:
        raise ValueError("target recall must be in (0, 1]")
    if not injurious_scores:
        raise ValueError("no injurious examples to compute recall on")
    ordered = sorted(injurious_scores, reverse=True)
    needed = math.ceil(target_recall * len(ordered) - 1e-9)
    return float(ordered[max(needed, 1) - 1])


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve (the Mann–Whitney U statistic over n₊·n₋); None without both classes."""
    positives = [s for s, y in zip(scores, labels, strict=True) if y]
    negatives = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not positives or not negatives:
        return None
    from scipy.stats import mannwhitneyu

    statistic = mannwhitneyu(positives, negatives, alternative="two-sided").statistic
    return float(statistic) / (len(positives) * len(negatives))


def heldout_metrics(
    scores: Sequence[float], labels: Sequence[bool], *, target_recall: float = 0.99
) -> dict[str, float | int | None]:
    """Accuracy at 0.5, AUROC, and recall/precision/filtered share at the target-recall threshold."""
    n = len(scores)
    if n == 0:
        return {"n": 0}
    predicted = [s >= 0.5 for s in scores]
    accuracy = sum(p == y for p, y in zip(predicted, labels, strict=True)) / n
    positives = sum(labels)
    metrics: dict[str, float | int | None] = {
        "n": n,
        "injurious": positives,
        "safe": n - positives,
        "accuracy": accuracy,
        "recall_at_0_5": (sum(p and y for p, y in zip(predicted, labels, strict=True)) / positives)
        if positives
        else None,
        "auroc": auroc(scores, labels),
        "target_recall": target_recall,
    }
    injurious_scores = [s for s, y in zip(scores, labels, strict=True) if y]
    if injurious_scores:
        threshold = threshold_for_recall(injurious_scores, target_recall)
        flagged = [s >= threshold for s in scores]
        caught = sum(f and y for f, y in zip(flagged, labels, strict=True))
        metrics.update(
            threshold_at_target=threshold,
            recall_at_threshold=caught / positives,
            precision_at_threshold=caught / sum(flagged) if any(flagged) else None,
            filtered_at_threshold=sum(flagged) / n,
        )
    return metrics


@dataclass(frozen=True)
class ThresholdRow:
    threshold: float
    filtered_fraction: float | None  # of all scored completions
    recall: float | None  # of labelled injurious examples, filtered out
    passed: int  # labelled examples that get through
    passed_injurious: int  # ...of which injurious
    unsafe_rate: float | None  # passed_injurious / passed
    ci_low: float | None
    ci_high: float | None


def threshold_rows(
    thresholds: Sequence[float],
    *,
    labelled_scores: Sequence[float],
    labelled_injurious: Sequence[bool],
    all_scores: Sequence[float],
) -> list[ThresholdRow]:
    """For each threshold: filtered share of all completions, recall, and the unsafe rate that gets through.

    The unsafe rate is estimated on the labelled examples that score below the threshold, with an
    exact 95 % interval; with none below it there is no estimate.
    """
    everything = np.sort(np.asarray(all_scores, dtype=float))
    scores = np.asarray(labelled_scores, dtype=float)
    injurious = np.asarray(labelled_injurious, dtype=bool)
    total_injurious = int(injurious.sum())
    rows = []
    for t in thresholds:
        filtered = (
            (len(everything) - int(np.searchsorted(everything, t, side="left"))) / len(everything)
            if len(everything)
            else None
        )
        passing = scores < t
        passed = int(passing.sum())
        passed_injurious = int((passing & injurious).sum())
        recall = (total_injurious - passed_injurious) / total_injurious if total_injurious else None
        low: float | None
        high: float | None
        rate: float | None
        if passed:
            low, high = clopper_pearson(passed_injurious, passed)
            rate = passed_injurious / passed
        else:
            low = high = rate = None
        rows.append(
            ThresholdRow(
                threshold=float(t),
                filtered_fraction=filtered,
                recall=recall,
                passed=passed,
                passed_injurious=passed_injurious,
                unsafe_rate=rate,
                ci_low=low,
                ci_high=high,
            )
        )
    return rows


def candidate_thresholds(extra: Sequence[float] = ()) -> list[float]:
    """A grid dense near 0 and 1 (where conservative thresholds live), plus `extra`."""
    grid = {0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3}
    grid |= {round(x / 20, 2) for x in range(7, 20)}
    grid |= {0.97, 0.98, 0.99, 0.995, 0.999}
    grid |= {float(x) for x in extra if 0 <= x <= 1}
    return sorted(grid)
