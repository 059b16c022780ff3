"""Consensus: the majority label of a completion, and the items of a queue whose reviewers disagree."""

from __future__ import annotations

from collections import Counter, defaultdict

from django.db.models import F

from review.models import Completion, Label, QueueItem, ReviewQueue


def _majority(values: list[str]) -> str | None:
    if not values:
        return None
    counts = Counter(values).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None  # a tie is a disagreement for adjudication, not a consensus
    return counts[0][0]


def completion_consensus(*, completion: Completion) -> str | None:
    """The majority label of `completion` once its overlap is met, else None.

    An adjudicator's label settles it; otherwise the labels of every queue item of the completion
    that has all its `overlap` labels are pooled, and a tie is no consensus.
    """
    adjudicated = (
        Label.objects.filter(completion=completion, queue__policy=ReviewQueue.Policy.ADJUDICATE)
        .order_by("-id")
        .values_list("value", flat=True)
        .first()
    )
    if adjudicated:
        return adjudicated
    complete = QueueItem.objects.filter(
        completion=completion, label_count__gte=1, queue__overlap__lte=F("label_count")
    ).exclude(queue__policy=ReviewQueue.Policy.ADJUDICATE)
    values = list(Label.objects.filter(item__in=complete).values_list("value", flat=True))
    return _majority(values)


def queue_disagreements(*, queue: ReviewQueue) -> list[QueueItem]:
    """Complete items of `queue` whose labels are not all the same."""
    items = list(QueueItem.objects.filter(queue=queue, label_count__gte=max(queue.overlap, 2)).order_by("id"))
    values: dict[int, set[str]] = defaultdict(set)
    for item_id, value in Label.objects.filter(item__in=items).values_list("item_id", "value"):
        values[item_id].add(value)
    return [item for item in items if len(values[item.pk]) > 1]
