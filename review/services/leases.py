"""Leases on slots: a reviewer's next item, the heartbeat that renews it, skip and release."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from rebench_site.errors import ServiceError
from review.models import Assignment, ReviewQueue, Slot
from review.services._common import _locked_assignment, _require_live_lease


def reviewer_may_work(*, queue: ReviewQueue, reviewer: User) -> bool:
    from rebench_site.roles import REVIEWER, has_role

    if not has_role(reviewer, REVIEWER):
        return False
    return queue.all_reviewers or queue.reviewers.filter(pk=reviewer.pk).exists()


def _active_leases(queue: ReviewQueue, reviewer: User, now: datetime) -> list[Assignment]:
    return list(
        Assignment.objects.filter(
            queue=queue, reviewer=reviewer, state=Assignment.State.LEASED, expires_at__gt=now, slot__lease=F("pk")
        )
        .select_related("item__completion", "queue")
        .order_by("leased_at", "id")
    )


def lease_next(
    *, queue: ReviewQueue, reviewer: User, exclude: Iterable[int] = (), now: datetime | None = None
) -> Assignment | None:
    """The reviewer's next item: a lease they already hold (not in `exclude`), else a free slot; None when done.

    The pick is one short transaction: the first free slot in policy order whose item this reviewer
    has never had, locked with FOR UPDATE SKIP LOCKED on PostgreSQL so concurrent reviewers pass
    over each other's rows instead of queueing on them. (SQLite serialises writers: its
    transactions begin IMMEDIATE.) A slot whose lease has expired counts as free.
    """
    if not queue.is_open:
        raise ServiceError("this queue is closed", field="queue")
    if not reviewer_may_work(queue=queue, reviewer=reviewer):
        raise ServiceError("you are not a reviewer of this queue", field="queue")
    now = now or timezone.now()
    excluded = {int(x) for x in exclude}
    held = _active_leases(queue, reviewer, now)
    for assignment in held:
        if assignment.pk not in excluded:
            return assignment
    if len(held) >= settings.REVIEW_MAX_LEASES:
        raise ServiceError(f"you already hold {len(held)} items of this queue", field="queue")
    for _attempt in range(5):
        try:
            return _lease_pick(queue, reviewer, now)
        except IntegrityError:
            # The same reviewer picked another slot of the same item at the same moment (two tabs):
            # the unique (item, reviewer) refused the second; pick again.
            continue
    raise ServiceError("could not lease an item; try again", field="queue")


@transaction.atomic
def _lease_pick(queue: ReviewQueue, reviewer: User, now: datetime) -> Assignment | None:
    seen = Assignment.objects.filter(item_id=OuterRef("item_id"), reviewer=reviewer)
    slot = (
        Slot.objects.filter(queue=queue, filled=False)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now))
        .filter(~Exists(seen))
        .order_by("sort_key", "id")
        .select_for_update(skip_locked=True, of=("self",))
        .first()
    )
    if slot is None:
        return None
    expires = now + timedelta(seconds=queue.lease_seconds)
    assignment = Assignment.objects.create(
        queue=queue, item_id=slot.item_id, slot=slot, reviewer=reviewer, leased_at=now, expires_at=expires
    )
    Slot.objects.filter(pk=slot.pk).update(lease=assignment, lease_expires_at=expires)
    return Assignment.objects.select_related("item__completion", "queue").get(pk=assignment.pk)


@transaction.atomic
def lease_renew(
    *, reviewer: User, assignment_ids: Iterable[Any], now: datetime | None = None
) -> dict[int, datetime | None]:
    """Extend the reviewer's live leases (the labeling page's heartbeat); expired ones are reported as None."""
    now = now or timezone.now()
    result: dict[int, datetime | None] = {}
    for raw in list(assignment_ids)[: settings.REVIEW_MAX_LEASES + 2]:
        assignment, slot = _locked_assignment(raw, reviewer)
        if (
            assignment.state != Assignment.State.LEASED
            or slot.lease_id != assignment.pk
            or assignment.expires_at <= now
        ):
            result[assignment.pk] = None
            continue
        expires = now + timedelta(seconds=assignment.queue.lease_seconds)
        Assignment.objects.filter(pk=assignment.pk).update(expires_at=expires)
        Slot.objects.filter(pk=slot.pk).update(lease_expires_at=expires)
        result[assignment.pk] = expires
    return result


@transaction.atomic
def lease_skip(*, reviewer: User, assignment_id: Any, now: datetime | None = None) -> Assignment:
    """Give the item back for others; this reviewer won't be offered it again."""
    now = now or timezone.now()
    assignment, slot = _locked_assignment(assignment_id, reviewer)
    if assignment.state == Assignment.State.SKIPPED:
        return assignment  # a repeated skip (double key press) changes nothing
    if assignment.state == Assignment.State.LABELED:
        raise ServiceError("you already labelled this item", field="assignment")
    _require_live_lease(assignment, slot, now)
    assignment.state = Assignment.State.SKIPPED
    assignment.save(update_fields=["state"])
    Slot.objects.filter(pk=slot.pk).update(lease=None, lease_expires_at=None)
    return assignment


@transaction.atomic
def lease_release(*, reviewer: User, assignment_id: Any) -> None:
    """Drop a lease on an item the reviewer never saw (a prefetched one): as if it was never handed out."""
    assignment, slot = _locked_assignment(assignment_id, reviewer)
    if assignment.state != Assignment.State.LEASED:
        raise ServiceError("only an unlabelled item can be released", field="assignment")
    if slot.lease_id == assignment.pk:
        Slot.objects.filter(pk=slot.pk).update(lease=None, lease_expires_at=None)
    assignment.delete()
