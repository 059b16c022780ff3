"""Review queues: building one over a source/batch with its policy's order and overlap slots, and closing it."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from rebench_site.errors import ServiceError
from review.models import DEFAULT_MIN_SECONDS_PER_ITEM, Completion, ReviewQueue
from review.services._common import _items_add


def current_threshold() -> float:
    """The active classifier threshold (the classifier app's setting) or REVIEW_DEFAULT_THRESHOLD."""
    from django.apps import apps

    if not apps.is_installed("review.classifier"):
        return settings.REVIEW_DEFAULT_THRESHOLD
    from review.classifier.selectors import active_threshold

    value = active_threshold()
    return settings.REVIEW_DEFAULT_THRESHOLD if value is None else float(value)


@transaction.atomic
def queue_create(
    *,
    created_by: AbstractBaseUser | None,
    name: str,
    policy: str,
    overlap: int = 1,
    lease_seconds: int | None = None,
    all_reviewers: bool = True,
    reviewers: Iterable[AbstractBaseUser] = (),
    gold_rate: float = 0.0,
    min_seconds_per_item: Any = DEFAULT_MIN_SECONDS_PER_ITEM,
    guideline: str = "",
    source: str = "",
    batch: str = "",
    size: int | None = None,
    adjudicates: ReviewQueue | None = None,
    seed: int | None = None,
) -> ReviewQueue:
    """Build a queue over the completions matching source/batch, each with a policy sort key and `overlap` slots."""
    name = (name or "").strip()
    if not name:
        raise ServiceError("is required", field="name")
    if policy not in ReviewQueue.Policy.values:
        raise ServiceError(f"must be one of {', '.join(ReviewQueue.Policy.values)}", field="policy")
    if not 1 <= int(overlap) <= settings.REVIEW_MAX_OVERLAP:
        raise ServiceError(f"must be between 1 and {settings.REVIEW_MAX_OVERLAP}", field="overlap")
    lease_seconds = settings.REVIEW_DEFAULT_LEASE_SECONDS if lease_seconds is None else int(lease_seconds)
    if not 30 <= lease_seconds <= 24 * 3600:
        raise ServiceError("must be between 30 seconds and 24 hours", field="lease_seconds")
    if not 0.0 <= float(gold_rate) < 1.0:
        raise ServiceError("must be at least 0 and below 1", field="gold_rate")
    min_seconds = _min_seconds(min_seconds_per_item)
    if source and source not in Completion.Source.values:
        raise ServiceError(f"must be one of {', '.join(Completion.Source.values)}", field="source")
    if size is not None and size < 1:
        raise ServiceError("must be at least 1", field="size")
    reviewers = list(reviewers)
    if not all_reviewers and not reviewers:
        raise ServiceError("name at least one reviewer, or open the queue to all reviewers", field="reviewers")
    if policy == ReviewQueue.Policy.ADJUDICATE and adjudicates is None:
        raise ServiceError("an adjudication queue needs the queue whose disagreements it settles", field="adjudicates")
    rng = random.Random(seed)  # noqa: S311 - sampling and shuffling, not secrets
    threshold = current_threshold() if policy == ReviewQueue.Policy.UNCERTAIN else None
    queue = ReviewQueue.objects.create(
        name=name[:200],
        policy=policy,
        overlap=overlap,
        lease_seconds=lease_seconds,
        all_reviewers=all_reviewers,
        gold_rate=gold_rate,
        min_seconds_per_item=min_seconds,
        guideline=guideline,
        source_filter=source,
        batch_filter=batch[:200],
        threshold=threshold,
        adjudicates=adjudicates,
        created_by=created_by,
    )
    if reviewers:
        queue.reviewers.set(reviewers)

    if policy == ReviewQueue.Policy.ADJUDICATE:
        assert adjudicates is not None
        from review.selectors import queue_disagreements

        ids = [item.completion_id for item in queue_disagreements(queue=adjudicates)]
        entries = [(cid, float(n), False) for n, cid in enumerate(ids)]
    else:
        completions = Completion.objects.all()
        if source:
            completions = completions.filter(source=source)
        elif policy == ReviewQueue.Policy.VERIFY:
            completions = completions.filter(source__in=[Completion.Source.RED_TEAM, Completion.Source.ADVERSARIAL])
        if batch:
            completions = completions.filter(batch=batch)
        rows = list(completions.values_list("id", "classifier_score", "gold_label"))
        if size is not None and size < len(rows):
            rows = rng.sample(rows, size)
        entries = []
        for cid, score, gold_label in rows:
            if policy == ReviewQueue.Policy.UNCERTAIN:
                # Unscored completions go last, in random order among themselves.
                key = abs(score - threshold) if score is not None else 1e6 + rng.random()  # type: ignore[operator]
            elif policy == ReviewQueue.Policy.RANDOM:
                key = rng.random()
            else:
                key = float(cid)
            entries.append((cid, key, bool(gold_label)))
        if gold_rate and entries:
            wanted = round(gold_rate * len(entries) / (1 - gold_rate))
            taken = {e[0] for e in entries}
            pool = [g for g in Completion.objects.exclude(gold_label="").values_list("id", flat=True) if g not in taken]
            gold_ids = rng.sample(pool, min(wanted, len(pool)))
            low, high = min(e[1] for e in entries), max(e[1] for e in entries)
            entries += [(gid, rng.uniform(low, high), True) for gid in gold_ids]
    if not entries:
        raise ServiceError("no completions match this source and batch", field="source")
    _items_add(queue, entries)
    return queue


def _min_seconds(raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ServiceError("must be a number of seconds", field="min_seconds_per_item") from None
    if not 0.0 <= value <= 3600.0:  # NaN fails both comparisons
        raise ServiceError("must be between 0 and 3,600 seconds", field="min_seconds_per_item")
    return value


@transaction.atomic
def queue_close(*, queue: ReviewQueue) -> ReviewQueue:
    queue.is_open = False
    queue.save(update_fields=["is_open"])
    return queue
