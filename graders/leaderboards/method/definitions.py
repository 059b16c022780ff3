"""The definitions, one run and one sample at a time (the reference the vectorised code must match):
normalisation, the exact expected best of k, and k for a budget."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from graders.leaderboards.method._shared import (
    _SLACK,
    FloatArray,
)


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
