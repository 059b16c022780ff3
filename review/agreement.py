"""Agreement between reviewers over a set of labels: Fleiss' kappa, Krippendorff's alpha, Cohen's kappa per
pair of reviewers and raw agreement, for a queue's quality figures."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from review.models import Label, ReviewQueue
from review.selectors import CATEGORIES


@dataclass
class PairKappa:
    reviewer_a: str
    reviewer_b: str
    items: int
    kappa: float | None


@dataclass
class Agreement:
    """Agreement figures for a set of labels; None where the data can't define one."""

    items: int = 0
    labels: int = 0
    fleiss_kappa: float | None = None
    fleiss_items: int = 0
    krippendorff_alpha: float | None = None
    pairs: list[PairKappa] = field(default_factory=list)
    percent_agreement: float | None = None


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def agreement_from_labels(rows: list[tuple[int, str, str]]) -> Agreement:
    """Agreement over (item id, reviewer name, label value) rows: Fleiss' kappa (items with the modal
    number of labels), Krippendorff's alpha (nominal, missing labels allowed), Cohen's kappa per pair.
    The statistics come from statsmodels and the `krippendorff` package."""
    # Imported here: statsmodels pulls in scipy.stats (about a second), which no other page needs.
    import krippendorff
    from statsmodels.stats.inter_rater import cohens_kappa, fleiss_kappa

    result = Agreement(labels=len(rows))
    by_item: dict[int, dict[str, str]] = defaultdict(dict)
    for item_id, reviewer, value in rows:
        by_item[item_id][reviewer] = value
    result.items = len(by_item)
    multi = {i: v for i, v in by_item.items() if len(v) >= 2}
    if not multi:
        return result
    index = {c: n for n, c in enumerate(CATEGORIES)}
    # Fleiss assumes the same number of raters per item: use the items with the usual count.
    modal = Counter(len(v) for v in multi.values()).most_common(1)[0][0]
    table = np.zeros((0, len(CATEGORIES)))
    fleiss_rows = [v for v in multi.values() if len(v) == modal]
    if fleiss_rows:
        table = np.array([[sum(1 for x in v.values() if x == c) for c in CATEGORIES] for v in fleiss_rows], float)
        with np.errstate(divide="ignore", invalid="ignore"):
            result.fleiss_kappa = _finite(fleiss_kappa(table, method="fleiss"))
        result.fleiss_items = len(fleiss_rows)
    result.percent_agreement = sum(1 for v in multi.values() if len(set(v.values())) == 1) / len(multi)
    reviewers = sorted({r for v in by_item.values() for r in v})
    items = sorted(by_item)
    matrix = np.full((len(reviewers), len(items)), np.nan)
    rpos = {r: n for n, r in enumerate(reviewers)}
    for col, item_id in enumerate(items):
        for reviewer, value in by_item[item_id].items():
            matrix[rpos[reviewer], col] = index[value]
    if len({x for x in matrix.flatten() if not np.isnan(x)}) >= 2:
        result.krippendorff_alpha = _finite(
            krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal", value_domain=[0, 1, 2])
        )
    elif multi:
        result.krippendorff_alpha = None  # one category used throughout: alpha is undefined (0/0)
    for a, b in combinations(reviewers, 2):
        both = [(v[a], v[b]) for v in by_item.values() if a in v and b in v]
        if len(both) < 2:
            continue
        contingency = np.zeros((len(CATEGORIES), len(CATEGORIES)))
        for x, y in both:
            contingency[index[x], index[y]] += 1
        with np.errstate(divide="ignore", invalid="ignore"):
            kappa = _finite(cohens_kappa(contingency).kappa)
        result.pairs.append(PairKappa(a, b, len(both), kappa))
    return result


def _label_rows(labels: QuerySet[Label]) -> list[tuple[int, str, str]]:
    username = get_user_model().USERNAME_FIELD
    return list(labels.values_list("item_id", f"reviewer__{username}", "value"))


def queue_agreement(*, queue: ReviewQueue) -> Agreement:
    return agreement_from_labels(_label_rows(Label.objects.filter(queue=queue)))
