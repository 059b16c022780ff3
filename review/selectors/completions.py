"""Completions: counts per source and batch, and the admin's completion list with its label counts."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from review.models import Completion, Label, LabelValue, QueueItem, ReviewQueue
from review.selectors._shared import CATEGORIES


def completion_counts() -> list[dict[str, Any]]:
    """Completions per source and batch, with how many the classifier has scored."""
    return list(
        Completion.objects.values("source", "batch")
        .annotate(n=Count("id"), scored=Count("id", filter=Q(classifier_score__isnull=False)))
        .order_by("source", "batch")
    )


# --- the admin's completion list -----------------------------------------------------------------

COMPLETION_LABEL_STATES = {
    "unlabelled": "no label yet",
    "labelled": "at least one label",
    "injurious": "labelled injurious by someone",
    "safe": "labelled safe by someone",
    "unsure": "labelled unsure by someone",
    "disputed": "labels that differ",
}


def completions_for_admin(
    *, queue: ReviewQueue | None = None, state: str = "", source: str = "", q: str = ""
) -> QuerySet[Completion]:
    """Completions for the admin's list, newest first. With a queue: its completions, and the label
    state counts that queue's labels only. `q` matches prompt or text (contains), external id or batch."""
    completions = Completion.objects.all()
    labels = Label.objects.filter(completion_id=OuterRef("pk"))
    if queue is not None:
        completions = completions.filter(Exists(QueueItem.objects.filter(queue=queue, completion_id=OuterRef("pk"))))
        labels = labels.filter(queue=queue)
    if source:
        completions = completions.filter(source=source)
    if q:
        completions = completions.filter(Q(text__icontains=q) | Q(prompt__icontains=q) | Q(external_id=q) | Q(batch=q))
    if state == "unlabelled":
        completions = completions.filter(~Exists(labels))
    elif state == "labelled":
        completions = completions.filter(Exists(labels))
    elif state in LabelValue.values:
        completions = completions.filter(Exists(labels.filter(value=state)))
    elif state == "disputed":
        has = {value: Exists(labels.filter(value=value)) for value in CATEGORIES}
        completions = completions.filter(
            (has["injurious"] & has["safe"]) | (has["injurious"] & has["unsure"]) | (has["safe"] & has["unsure"])
        )
    return completions.order_by("-id")


def label_counts(*, completion_ids: list[int], queue: ReviewQueue | None = None) -> dict[int, dict[str, int]]:
    """Completion id → {injurious, safe, unsure} label counts (in `queue` when given), in one query."""
    labels = Label.objects.filter(completion_id__in=completion_ids)
    if queue is not None:
        labels = labels.filter(queue=queue)
    result: dict[int, dict[str, int]] = {cid: dict.fromkeys(CATEGORIES, 0) for cid in completion_ids}
    for cid, value, n in labels.values_list("completion_id", "value").annotate(n=Count("id")).order_by():
        result[cid][value] = n
    return result
