"""Queue state: the queues a reviewer may work and their progress, and every queue's counts for the admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from review.models import Assignment, Label, ReviewQueue, Slot


def _count(rows: QuerySet[Any]) -> Coalesce:
    counted = rows.order_by().values("queue").annotate(n=Count("id")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _slots_open_to(reviewer: User, now: datetime) -> QuerySet[Slot]:
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


def queues_for_reviewer(*, reviewer: User, now: datetime | None = None) -> QuerySet[ReviewQueue]:
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


def queue_progress(*, queue: ReviewQueue, reviewer: User, now: datetime | None = None) -> QueueProgress:
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
    rows: list[ReviewQueue] = list(queues.annotate(item_count=Count("items", distinct=True)))
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
        q.slot_total = s.get("total", 0)  # type: ignore[attr-defined]  # counts for the page, on the row
        q.slots_filled = s.get("filled_count", 0)  # type: ignore[attr-defined]  # counts for the page, on the row
        q.slots_leased = s.get("leased_count", 0)  # type: ignore[attr-defined]  # counts for the page, on the row
        q.slots_waiting = q.slot_total - q.slots_filled - q.slots_leased  # type: ignore[attr-defined]  # counts for the page, on the row
        q.labels_total = label_counts.get(q.pk, {}).get("total", 0)  # type: ignore[attr-defined]  # counts for the page, on the row
        q.labels_today = label_counts.get(q.pk, {}).get("today", 0)  # type: ignore[attr-defined]  # counts for the page, on the row
    return rows
