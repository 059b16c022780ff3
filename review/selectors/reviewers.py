"""Reviewers' throughput and pace: labels, time, accuracy on gold and too-fast labels per reviewer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone

from review.models import Label, LabelValue
from review.selectors._shared import CATEGORIES


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


def reviewer_throughput(*, reviewer: User, now: datetime | None = None) -> dict[str, Any]:
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
