"""Agreement figures against a hand-computed example, reviewer stats, and the JSONL export."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from review import agreement, selectors, services


def test_agreement_on_a_hand_computed_example() -> None:
    # Two reviewers, four items:   A: inj inj safe safe   B: inj safe safe safe
    # Cohen:  po = 3/4; pe = (2/4)(1/4) + (2/4)(3/4) = 1/2; kappa = (3/4 − 1/2)/(1 − 1/2) = 1/2.
    # Fleiss: p_inj = 3/8, p_safe = 5/8, Pe = 34/64; P̄ = (1 + 0 + 1 + 1)/4 = 3/4;
    #         kappa = (3/4 − 34/64)/(1 − 34/64) = 7/15.
    # Krippendorff (nominal): o(inj,inj) = 2, o(inj,safe) = o(safe,inj) = 1, o(safe,safe) = 4; n = 8,
    #         n_inj = 3, n_safe = 5; Do = 2/8, De = 2·3·5/(8·7) = 30/56; alpha = 1 − Do/De = 8/15.
    a = ["injurious", "injurious", "safe", "safe"]
    b = ["injurious", "safe", "safe", "safe"]
    rows = [(i, "a", v) for i, v in enumerate(a)] + [(i, "b", v) for i, v in enumerate(b)]
    result = agreement.agreement_from_labels(rows)
    assert result.items == 4
    assert result.fleiss_kappa == pytest.approx(7 / 15)
    assert result.krippendorff_alpha == pytest.approx(8 / 15)
    assert result.percent_agreement == pytest.approx(3 / 4)
    (pair,) = result.pairs
    assert (pair.reviewer_a, pair.reviewer_b, pair.items) == ("a", "b", 4)
    assert pair.kappa == pytest.approx(1 / 2)


def test_agreement_is_undefined_not_a_crash_when_everyone_says_the_same() -> None:
    rows = [(i, r, "safe") for i in range(3) for r in ("a", "b")]
    result = agreement.agreement_from_labels(rows)
    assert result.percent_agreement == 1.0
    assert result.krippendorff_alpha is None
    assert result.pairs[0].kappa is None
    assert agreement.agreement_from_labels([]).items == 0


def _label_all(queue, plan) -> None:
    for reviewer, values in plan:
        for value in values:
            lease = services.lease_next(queue=queue, reviewer=reviewer)
            # Ten seconds after the pick, so the page's reported 6 s lies within the lease.
            later = timezone.now() + timedelta(seconds=10)
            services.label_submit(reviewer=reviewer, assignment_id=lease.pk, value=value, seconds_spent=6, now=later)


def test_queue_agreement_and_reviewer_stats_from_real_labels(completions, make_queue, reviewers) -> None:
    completions(2, batch="b1")
    completions(2, batch="gold", gold_label="injurious")
    queue = make_queue(batch="b1", overlap=2, gold_rate=0.5, seed=5)
    assert queue.items.filter(is_gold=True).count() == 2
    _label_all(queue, [(reviewers[0], ["injurious"] * 4), (reviewers[1], ["injurious", "injurious", "safe", "safe"])])
    figures = agreement.queue_agreement(queue=queue)
    assert figures.items == 4
    assert figures.fleiss_items == 4
    stats = {s.username: s for s in selectors.reviewer_stats(labels=queue.labels.all())}
    assert stats["rev0"].gold_accuracy == 1.0
    assert stats["rev0"].labels == 4
    assert stats["rev0"].seconds == pytest.approx(24)
    assert stats["rev0"].labels_per_hour == pytest.approx(600)
    accuracy = stats["rev1"].gold_accuracy
    assert accuracy is not None
    assert 0.0 <= accuracy <= 1.0
    assert stats["rev1"].counts == {"injurious": 2, "safe": 2, "unsure": 0}


def test_export_writes_one_json_object_per_label(completions, make_queue, reviewers) -> None:
    completions(2)
    queue = make_queue()
    _label_all(queue, [(reviewers[0], ["safe", "unsure"])])
    lines = list(selectors.labels_export_lines(queue=queue))
    records = [json.loads(line) for line in lines]
    assert [r["label"] for r in records] == ["safe", "unsure"]
    assert {r["reviewer"] for r in records} == {"rev0"}
    assert all(line.endswith("\n") for line in lines)
