"""Review queues: building one over a source/batch with its policy's order and overlap slots, and closing it."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet

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
    created_by: User | None,
    name: str,
    policy: str,
    overlap: int = 1,
    lease_seconds: int | None = None,
    all_reviewers: bool = True,
    reviewers: Iterable[User] = (),
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
    # One input at a time, in this order: the first that fails is the field the error names.
    name = _checked_name(name)
    _check_policy(policy)
    _check_overlap(overlap)
    lease_seconds = _checked_lease_seconds(lease_seconds)
    _check_gold_rate(gold_rate)
    min_seconds = _min_seconds(min_seconds_per_item)
    _check_source(source)
    _check_size(size)
    reviewers = _checked_reviewers(all_reviewers, reviewers)
    _check_adjudicates(policy, adjudicates)
    # One generator for the sample, the keys and the gold items, drawn in that order: a seed gives one queue.
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
        entries = _disagreement_entries(adjudicates)
    else:
        rows = _sampled_rows(_matching_completions(policy, source, batch), size, rng)
        entries = _keyed_entries(rows, policy, threshold, rng)
        if gold_rate and entries:
            entries += _gold_entries(entries, gold_rate, rng)
    if not entries:
        raise ServiceError("no completions match this source and batch", field="source")
    _items_add(queue, entries)
    return queue


# --- queue_create's input checks, in the order it makes them -----------------------------------


def _checked_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ServiceError("is required", field="name")
    return name


def _check_policy(policy: str) -> None:
    if policy not in ReviewQueue.Policy.values:
        raise ServiceError(f"must be one of {', '.join(ReviewQueue.Policy.values)}", field="policy")


def _check_overlap(overlap: int) -> None:
    if not 1 <= int(overlap) <= settings.REVIEW_MAX_OVERLAP:
        raise ServiceError(f"must be between 1 and {settings.REVIEW_MAX_OVERLAP}", field="overlap")


def _checked_lease_seconds(lease_seconds: int | None) -> int:
    lease_seconds = settings.REVIEW_DEFAULT_LEASE_SECONDS if lease_seconds is None else int(lease_seconds)
    if not 30 <= lease_seconds <= 24 * 3600:
        raise ServiceError("must be between 30 seconds and 24 hours", field="lease_seconds")
    return lease_seconds


def _check_gold_rate(gold_rate: float) -> None:
    if not 0.0 <= float(gold_rate) < 1.0:
        raise ServiceError("must be at least 0 and below 1", field="gold_rate")


def _min_seconds(raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ServiceError("must be a number of seconds", field="min_seconds_per_item") from None
    if not 0.0 <= value <= 3600.0:  # NaN fails both comparisons
        raise ServiceError("must be between 0 and 3,600 seconds", field="min_seconds_per_item")
    return value


def _check_source(source: str) -> None:
    if source and source not in Completion.Source.values:
        raise ServiceError(f"must be one of {', '.join(Completion.Source.values)}", field="source")


def _check_size(size: int | None) -> None:
    if size is not None and size < 1:
        raise ServiceError("must be at least 1", field="size")


def _checked_reviewers(all_reviewers: bool, reviewers: Iterable[User]) -> list[User]:
    reviewers = list(reviewers)
    if not all_reviewers and not reviewers:
        raise ServiceError("name at least one reviewer, or open the queue to all reviewers", field="reviewers")
    return reviewers


def _check_adjudicates(policy: str, adjudicates: ReviewQueue | None) -> None:
    if policy == ReviewQueue.Policy.ADJUDICATE and adjudicates is None:
        raise ServiceError("an adjudication queue needs the queue whose disagreements it settles", field="adjudicates")


# --- queue_create's items: (completion id, sort key, is gold), as _items_add takes them ---------

Entry = tuple[int, float, bool]


def _disagreement_entries(adjudicates: ReviewQueue) -> list[Entry]:
    """The adjudicated queue's items whose labels differ, in the order the selector gives them."""
    from review.selectors import queue_disagreements

    ids = [item.completion_id for item in queue_disagreements(queue=adjudicates)]
    return [(cid, float(n), False) for n, cid in enumerate(ids)]


def _matching_completions(policy: str, source: str, batch: str) -> QuerySet[Completion]:
    """The source's completions (a verify queue without one: red-team and adversarial), of the batch if named."""
    completions = Completion.objects.all()
    if source:
        completions = completions.filter(source=source)
    elif policy == ReviewQueue.Policy.VERIFY:
        completions = completions.filter(source__in=[Completion.Source.RED_TEAM, Completion.Source.ADVERSARIAL])
    if batch:
        completions = completions.filter(batch=batch)
    return completions


def _sampled_rows(
    completions: QuerySet[Completion], size: int | None, rng: random.Random
) -> list[tuple[int, float | None, str]]:
    """(id, classifier score, gold label) of every match, or of a random `size` of them."""
    rows = list(completions.values_list("id", "classifier_score", "gold_label"))
    if size is not None and size < len(rows):
        rows = rng.sample(rows, size)
    return rows


def _keyed_entries(
    rows: list[tuple[int, float | None, str]], policy: str, threshold: float | None, rng: random.Random
) -> list[Entry]:
    """Each row with its policy's sort key: nearest the threshold first, random, or arrival order."""
    entries = []
    for cid, score, gold_label in rows:
        if policy == ReviewQueue.Policy.UNCERTAIN:
            # Unscored completions go last, in random order among themselves.
            if score is not None:
                assert threshold is not None  # an uncertain queue has one
                key = abs(score - threshold)
            else:
                key = 1e6 + rng.random()
        elif policy == ReviewQueue.Policy.RANDOM:
            key = rng.random()
        else:
            key = float(cid)
        entries.append((cid, key, bool(gold_label)))
    return entries


def _gold_entries(entries: list[Entry], gold_rate: float, rng: random.Random) -> list[Entry]:
    """Gold completions not already in, making up `gold_rate` of the whole, keyed at random within the others' keys."""
    wanted = round(gold_rate * len(entries) / (1 - gold_rate))
    taken = {e[0] for e in entries}
    pool = [g for g in Completion.objects.exclude(gold_label="").values_list("id", flat=True) if g not in taken]
    gold_ids = rng.sample(pool, min(wanted, len(pool)))
    low, high = min(e[1] for e in entries), max(e[1] for e in entries)
    return [(gid, rng.uniform(low, high), True) for gid in gold_ids]


@transaction.atomic
def queue_close(*, queue: ReviewQueue) -> ReviewQueue:
    queue.is_open = False
    queue.save(update_fields=["is_open"])
    return queue
