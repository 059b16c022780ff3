"""Reads for review: consensus, queue state and progress, reviewer throughput and pace, a reviewer's own
labels, the admin's completion list, exports. Agreement between reviewers (kappas, alpha) is review.agreement."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from review.models import Assignment, Completion, Label, LabelValue, QueueItem, ReviewQueue, Slot

# injurious, safe, unsure: the column order of every table below and of review.agreement's.
CATEGORIES = list(LabelValue.values)


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


def _count(rows: QuerySet[Any]) -> Coalesce:
    counted = rows.order_by().values("queue").annotate(n=Count("id")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _slots_open_to(reviewer: AbstractBaseUser, now: datetime) -> QuerySet[Slot]:
    """Unfilled slots of items this reviewer may still be given: never had, or leased by them right now.

    An item they labelled, skipped or let a lease expire on is never offered to them again (one
    Assignment per item and reviewer), so it is not theirs to label any more.
    """
    had = Assignment.objects.filter(item_id=OuterRef("item_id"), reviewer=reviewer).exclude(
        state=Assignment.State.LEASED, expires_at__gt=now
    )
    return Slot.objects.filter(filled=False).exclude(Exists(had))


def _count_items(slots: QuerySet[Slot]) -> Coalesce:
    counted = slots.order_by().values("queue").annotate(n=Count("item_id", distinct=True)).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def queues_for_reviewer(*, reviewer: AbstractBaseUser, now: datetime | None = None) -> QuerySet[ReviewQueue]:
    """Open queues this reviewer may work, with their progress: slots unfilled and in all, the reviewer's
    labels and the items still open to them."""
    now = now or timezone.now()
    return (
        ReviewQueue.objects.filter(is_open=True)
        .filter(Q(all_reviewers=True) | Q(reviewers=reviewer))
        .distinct()
        .annotate(
            # Subqueries, not joins: two joined counts would multiply slots by labels.
            open_slots=_count(Slot.objects.filter(queue=OuterRef("pk"), filled=False)),
            slot_total=_count(Slot.objects.filter(queue=OuterRef("pk"))),
            my_labels=_count(Label.objects.filter(queue=OuterRef("pk"), reviewer=reviewer)),
            my_remaining=_count_items(_slots_open_to(reviewer, now).filter(queue=OuterRef("pk"))),
        )
        .order_by("-created_at", "-id")
    )


@dataclass
class QueueProgress:
    """ "x of N" twice: the reviewer's labels of the items they may label, and the queue's labels of those wanted."""

    mine: int
    mine_possible: int  # their labels + the items still open to them
    filled: int
    wanted: int  # slots: items × overlap

    @staticmethod
    def _percent(part: int, whole: int) -> int:
        return int(100 * part / whole) if whole else 100

    @property
    def mine_percent(self) -> int:
        return self._percent(self.mine, self.mine_possible)

    @property
    def queue_percent(self) -> int:
        return self._percent(self.filled, self.wanted)

    def as_json(self) -> dict[str, int]:
        return {"mine": self.mine, "mine_possible": self.mine_possible, "filled": self.filled, "wanted": self.wanted}


def queue_progress(*, queue: ReviewQueue, reviewer: AbstractBaseUser, now: datetime | None = None) -> QueueProgress:
    now = now or timezone.now()
    mine = Label.objects.filter(queue=queue, reviewer=reviewer).count()
    remaining = (
        _slots_open_to(reviewer, now).filter(queue=queue).values("item_id").distinct().count() if queue.is_open else 0
    )
    slots = Slot.objects.filter(queue=queue).aggregate(wanted=Count("id"), filled=Count("id", filter=Q(filled=True)))
    return QueueProgress(mine=mine, mine_possible=mine + remaining, filled=slots["filled"], wanted=slots["wanted"])


def queue_overview(*, queues: QuerySet[ReviewQueue] | None = None) -> list[ReviewQueue]:
    """Every queue with its counts (items, slots open/leased/filled, labels today) in a fixed number of queries."""
    queues = (queues if queues is not None else ReviewQueue.objects.all()).order_by("-created_at", "-id")
    now = timezone.now()
    start_of_day = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = list(queues.annotate(item_count=Count("items", distinct=True)))
    ids = [q.pk for q in rows]
    slot_counts = {
        r["queue_id"]: r
        for r in Slot.objects.filter(queue_id__in=ids)
        .values("queue_id")
        .annotate(
            total=Count("id"),
            filled_count=Count("id", filter=Q(filled=True)),
            leased_count=Count("id", filter=Q(filled=False, lease_expires_at__gt=now)),
        )
    }
    label_counts = {
        r["queue_id"]: r
        for r in Label.objects.filter(queue_id__in=ids)
        .values("queue_id")
        .annotate(total=Count("id"), today=Count("id", filter=Q(created_at__gte=start_of_day)))
    }
    for q in rows:
        s = slot_counts.get(q.pk, {})
        q.slot_total = s.get("total", 0)  # type: ignore[attr-defined]
        q.slots_filled = s.get("filled_count", 0)  # type: ignore[attr-defined]
        q.slots_leased = s.get("leased_count", 0)  # type: ignore[attr-defined]
        q.slots_waiting = q.slot_total - q.slots_filled - q.slots_leased  # type: ignore[attr-defined]
        q.labels_total = label_counts.get(q.pk, {}).get("total", 0)  # type: ignore[attr-defined]
        q.labels_today = label_counts.get(q.pk, {}).get("today", 0)  # type: ignore[attr-defined]
    return rows


@dataclass
class ReviewerStats:
    reviewer_id: int
    username: str
    labels: int
    labels_today: int
    seconds: float
    gold_labels: int
    gold_correct: int
    counts: dict[str, int]
    too_fast: int = 0  # labels given in less time than their queue's min_seconds_per_item

    @property
    def too_fast_share(self) -> float | None:
        return self.too_fast / self.labels if self.labels else None

    @property
    def labels_per_hour(self) -> float | None:
        return 3600.0 * self.labels / self.seconds if self.seconds > 0 else None

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_labels if self.gold_labels else None

    @property
    def seconds_per_label(self) -> float | None:
        return self.seconds / self.labels if self.labels else None


def reviewer_stats(*, labels: QuerySet[Label] | None = None, now: datetime | None = None) -> list[ReviewerStats]:
    """Per reviewer: labels (all, today), time spent, labels per hour, accuracy on gold, label mix, too-fast labels.

    Labels per hour is labels ÷ the time their items were on screen (seconds_spent), so pauses
    between items don't lower it; a label is too fast when its time is under its queue's
    min_seconds_per_item."""
    labels = labels if labels is not None else Label.objects.all()
    now = now or timezone.now()
    start_of_day = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    username = get_user_model().USERNAME_FIELD
    rows = (
        labels.values("reviewer_id", f"reviewer__{username}")
        .annotate(
            n=Count("id"),
            today=Count("id", filter=Q(created_at__gte=start_of_day)),
            seconds=Sum("seconds_spent"),
            too_fast=Count("id", filter=Q(seconds_spent__lt=F("queue__min_seconds_per_item"))),
            gold=Count("id", filter=Q(item__is_gold=True) & ~Q(completion__gold_label="")),
            injurious=Count("id", filter=Q(value=LabelValue.INJURIOUS)),
            safe=Count("id", filter=Q(value=LabelValue.SAFE)),
            unsure=Count("id", filter=Q(value=LabelValue.UNSURE)),
        )
        .order_by(f"reviewer__{username}")
    )
    correct = dict(
        labels.filter(item__is_gold=True, value=F("completion__gold_label"))
        .values("reviewer_id")
        .annotate(n=Count("id"))
        .values_list("reviewer_id", "n")
    )
    return [
        ReviewerStats(
            reviewer_id=r["reviewer_id"],
            username=r[f"reviewer__{username}"],
            labels=r["n"],
            labels_today=r["today"],
            seconds=float(r["seconds"] or 0.0),
            gold_labels=r["gold"],
            gold_correct=correct.get(r["reviewer_id"], 0),
            counts={c: r[c] for c in CATEGORIES},
            too_fast=r["too_fast"],
        )
        for r in rows
    ]


def reviewer_throughput(*, reviewer: AbstractBaseUser, now: datetime | None = None) -> dict[str, Any]:
    """What the labeling page shows the reviewer: labels in the last hour and today, mean seconds per label."""
    now = now or timezone.now()
    mine = Label.objects.filter(reviewer=reviewer)
    stats = reviewer_stats(labels=mine, now=now)
    last_hour = mine.filter(created_at__gte=now - timedelta(hours=1)).count()
    mean = stats[0].seconds_per_label if stats else None
    return {
        "last_hour": last_hour,
        "today": stats[0].labels_today if stats else 0,
        "total": stats[0].labels if stats else 0,
        "seconds_per_label": mean,
        "labels_per_hour": stats[0].labels_per_hour if stats else None,
        "too_fast": stats[0].too_fast if stats else 0,
    }


def labels_export_lines(*, queue: ReviewQueue) -> Iterator[str]:
    """One JSON object per label (streamed): the completion, who labelled it, how and how fast."""
    username = get_user_model().USERNAME_FIELD
    rows = (
        Label.objects.filter(queue=queue)
        .order_by("id")
        .values_list(
            "id",
            "completion_id",
            "completion__external_id",
            "completion__source",
            "completion__batch",
            "item__is_gold",
            f"reviewer__{username}",
            "value",
            "note",
            "seconds_spent",
            "created_at",
        )
    )
    for row in rows.iterator(chunk_size=2000):
        (lid, cid, ext, source, batch, gold, who, value, note, seconds, created) = row
        yield (
            json.dumps(
                {
                    "label_id": lid,
                    "queue_id": queue.pk,
                    "completion_id": cid,
                    "external_id": ext,
                    "source": source,
                    "batch": batch,
                    "is_gold": gold,
                    "reviewer": who,
                    "label": value,
                    "note": note,
                    "seconds_spent": round(seconds, 3),
                    "created_at": created.isoformat(),
                },
                ensure_ascii=False,
            )
            + "\n"
        )


def completion_counts() -> list[dict[str, Any]]:
    """Completions per source and batch, with how many the classifier has scored."""
    return list(
        Completion.objects.values("source", "batch")
        .annotate(n=Count("id"), scored=Count("id", filter=Q(classifier_score__isnull=False)))
        .order_by("source", "batch")
    )


# --- a reviewer's own labels ---------------------------------------------------------------------


def label_edit_refusal(*, queue: ReviewQueue, adjudicated: bool) -> str | None:
    """Why a label of `queue` can't be changed any more (None: it can). The rule label_edit enforces."""
    if not queue.is_open:
        return "the queue is closed: its labels are final"
    if adjudicated:
        return "an adjudicator has taken this item: their label settles it"
    return None


def labels_of_reviewer(*, reviewer: AbstractBaseUser, queue: ReviewQueue | None = None) -> QuerySet[Label]:
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
