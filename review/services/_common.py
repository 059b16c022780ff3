"""Helpers more than one of the services modules use: adding items with their slots, and taking a lease's locks."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from rebench_site.errors import ServiceError
from review.models import Assignment, QueueItem, ReviewQueue, Slot

SLOT_BATCH = 5000


class NoLease(ServiceError):
    """The assignment is unknown or someone else's: the API answers 404 for it, as for any object not yours."""


def _items_add(queue: ReviewQueue, entries: Iterable[tuple[int, float, bool]]) -> int:
    """Add (completion id, sort key, is gold) items and their overlap slots; existing ones are left alone."""
    entries = list(entries)
    present = set(
        QueueItem.objects.filter(queue=queue, completion_id__in=[e[0] for e in entries]).values_list(
            "completion_id", flat=True
        )
    )
    added = 0
    for start in range(0, len(entries), SLOT_BATCH):
        chunk = [e for e in entries[start : start + SLOT_BATCH] if e[0] not in present]
        items = QueueItem.objects.bulk_create(
            [QueueItem(queue=queue, completion_id=cid, sort_key=key, is_gold=gold) for cid, key, gold in chunk]
        )
        Slot.objects.bulk_create(
            [
                Slot(queue=queue, item_id=item.pk, index=index, sort_key=item.sort_key)
                for item in items
                for index in range(queue.overlap)
            ]
        )
        added += len(items)
    return added


def _locked_assignment(assignment_id: Any, reviewer: User) -> tuple[Assignment, Slot]:
    """Lock the slot, then the assignment, then its item (always in this order, as labels and picks do).

    One statement: PostgreSQL takes the row locks of a join in the order `FOR UPDATE OF` names them,
    so this is the same order as three statements one after the other, in one round trip. The
    queue's row is read, not locked: nothing here decides on it, and locking it would put every
    label of a queue in one line (an adjudication queue, made on first need, locks it then).
    """
    try:
        assignment_id = int(assignment_id)
    except (TypeError, ValueError) as exc:
        raise ServiceError("must be an item number", field="assignment") from exc
    assignment = (
        Assignment.objects.select_related("slot", "queue", "item")
        .select_for_update(of=("slot", "self", "item"))
        .filter(pk=assignment_id, reviewer=reviewer)
        .first()
    )
    if assignment is None:
        raise NoLease("you hold no lease on this item", field="assignment")
    return assignment, assignment.slot


def _require_live_lease(assignment: Assignment, slot: Slot, now: datetime) -> None:
    if assignment.state == Assignment.State.SKIPPED:
        raise ServiceError("you skipped this item; it went back to the queue", field="assignment")
    if slot.lease_id != assignment.pk or assignment.expires_at <= now:
        raise ServiceError(
            f"your lease on this item expired at {timezone.localtime(assignment.expires_at):%H:%M:%S}; "
            "it went back to the queue",
            field="assignment",
            code="expired",
        )
