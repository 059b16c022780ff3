"""A reviewer's own labels: which they are, and whether each may still be edited."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef, Q, QuerySet

from review.models import Assignment, Label, QueueItem, ReviewQueue


def label_edit_refusal(*, queue: ReviewQueue, adjudicated: bool) -> str | None:
    """Why a label of `queue` can't be changed any more (None: it can). The rule label_edit enforces."""
    if not queue.is_open:
        return "the queue is closed: its labels are final"
    if adjudicated:
        return "an adjudicator has taken this item: their label settles it"
    return None


def labels_of_reviewer(*, reviewer: User, queue: ReviewQueue | None = None) -> QuerySet[Label]:
    """The reviewer's labels, newest first, with their queue, completion and change history."""
    labels = Label.objects.filter(reviewer=reviewer)
    if queue is not None:
        labels = labels.filter(queue=queue)
    return labels.select_related("queue", "completion").prefetch_related("revisions").order_by("-created_at", "-id")


@dataclass
class LabelRow:
    label: Label
    too_fast: bool
    refusal: str | None  # why it can't be edited; None when it can


def label_rows(labels: list[Label]) -> list[LabelRow]:
    """Each label with its pace flag and whether it may still be edited, in one more query for the page."""
    plain = [lb for lb in labels if lb.queue.policy != ReviewQueue.Policy.ADJUDICATE]
    taken = set(
        QueueItem.objects.filter(
            queue__adjudicates_id__in={lb.queue_id for lb in plain},
            completion_id__in={lb.completion_id for lb in plain},
        )
        .filter(Q(label_count__gt=0) | Exists(Assignment.objects.filter(item_id=OuterRef("pk"))))
        .values_list("queue__adjudicates_id", "completion_id")
    )
    return [
        LabelRow(
            label=lb,
            too_fast=lb.seconds_spent < lb.queue.min_seconds_per_item,
            refusal=label_edit_refusal(queue=lb.queue, adjudicated=(lb.queue_id, lb.completion_id) in taken),
        )
        for lb in labels
    ]
