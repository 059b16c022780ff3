"""Labels: a reviewer's label on the slot they lease, edits and undo, and the adjudication queue they feed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from rebench_site.errors import ServiceError
from review.models import Assignment, Label, LabelRevision, LabelValue, QueueItem, ReviewQueue, Slot
from review.selectors import label_edit_refusal
from review.services._common import _items_add, _locked_assignment, _require_live_lease


@dataclass
class LabelResult:
    label: Label
    created: bool


@transaction.atomic
def label_submit(
    *,
    reviewer: User,
    assignment_id: Any,
    value: str,
    note: str = "",
    seconds_spent: Any = None,
    now: datetime | None = None,
) -> LabelResult:
    """Record the reviewer's label on the slot they lease. The same label posted again is a no-op."""
    now = now or timezone.now()
    if value not in LabelValue.values:
        raise ServiceError(f"must be one of {', '.join(LabelValue.values)}", field="value")
    note = _check_note(note or "")
    assignment, slot = _locked_assignment(assignment_id, reviewer)
    if assignment.state == Assignment.State.LABELED:
        existing = Label.objects.get(assignment=assignment)
        if existing.value == value:
            return LabelResult(existing, created=False)
        raise ServiceError(
            f"you already labelled this item {existing.value}; undo (u) or change it under Your labels",
            field="value",
            code="labelled",
        )
    _require_live_lease(assignment, slot, now)
    try:
        seconds = float(seconds_spent) if seconds_spent not in (None, "") else None
        if seconds is not None and not math.isfinite(seconds):
            raise ValueError(seconds)
    except (TypeError, ValueError) as exc:
        raise ServiceError("must be a number of seconds", field="seconds") from exc
    held_for = (now - assignment.leased_at).total_seconds()
    # The page measures time on screen; the lease bounds it, so a bad clock can't inflate it.
    seconds = held_for if seconds is None else max(0.0, min(seconds, held_for))
    item = assignment.item
    label = Label.objects.create(
        assignment=assignment,
        queue_id=assignment.queue_id,
        item=item,
        completion_id=item.completion_id,
        reviewer=reviewer,
        value=value,
        note=note,
        seconds_spent=seconds,
    )
    assignment.state = Assignment.State.LABELED
    assignment.save(update_fields=["state"])
    Slot.objects.filter(pk=slot.pk).update(filled=True)
    # The item's row is locked (by _locked_assignment) until commit: an edit of another label of
    # this item locks the same row, so the disagreement check below sees settled values.
    QueueItem.objects.filter(pk=item.pk).update(label_count=F("label_count") + 1)
    item.refresh_from_db(fields=["label_count"])
    _adjudication_sync(assignment.queue, item, now)
    return LabelResult(label, created=True)


def _adjudication_sync(queue: ReviewQueue, item: QueueItem, now: datetime) -> None:
    """A complete item of a queue with overlap ≥ 2 is in its adjudication queue exactly when its labels differ.

    Disagreements flow in as soon as the item is complete; an edit that makes the labels agree takes
    the item out again (label_edit has already refused if an adjudicator took it).
    """
    if queue.policy == ReviewQueue.Policy.ADJUDICATE or not item.label_count >= queue.overlap >= 2:
        return
    values = set(Label.objects.filter(item=item).values_list("value", flat=True))
    if len(values) > 1:
        _items_add(_adjudication_queue_for(queue), [(item.completion_id, now.timestamp(), False)])
    else:
        QueueItem.objects.filter(queue__adjudicates=queue, completion_id=item.completion_id, label_count=0).exclude(
            Exists(Assignment.objects.filter(item_id=OuterRef("pk")))
        ).delete()


def _adjudication_queue_for(queue: ReviewQueue) -> ReviewQueue:
    existing = ReviewQueue.objects.filter(adjudicates=queue, is_open=True).order_by("id").first()
    if existing:
        return existing
    adjudication = ReviewQueue.objects.create(
        name=f"Adjudicate: {queue.name}"[:200],
        policy=ReviewQueue.Policy.ADJUDICATE,
        overlap=1,
        lease_seconds=queue.lease_seconds,
        all_reviewers=queue.all_reviewers,
        min_seconds_per_item=queue.min_seconds_per_item,
        guideline=queue.guideline,
        adjudicates=queue,
        created_by=queue.created_by,
    )
    adjudication.reviewers.set(queue.reviewers.all())
    return adjudication


def _adjudication_started(queue: ReviewQueue, completion_id: int) -> bool:
    """Whether an adjudicator has leased or labelled this queue's item of the completion.

    The adjudication slots are locked first, so an adjudicator's pick (SKIP LOCKED) passes over
    them until this transaction ends, and a pick already made is seen once it commits.
    """
    if queue.policy == ReviewQueue.Policy.ADJUDICATE:
        return False
    items = QueueItem.objects.filter(queue__adjudicates=queue, completion_id=completion_id)
    list(Slot.objects.select_for_update(of=("self",)).filter(item__in=items).values_list("pk", flat=True))
    return items.filter(Q(label_count__gt=0) | Q(assignments__isnull=False)).exists()


def _check_note(note: Any) -> str:
    if not isinstance(note, str):
        raise ServiceError("must be text", field="note")
    stripped = note.strip()
    if len(stripped) > 5000:
        raise ServiceError("is longer than 5,000 characters", field="note")
    return stripped


@transaction.atomic
def label_edit(
    *, reviewer: User, label_id: Any, value: Any = None, note: Any = None, now: datetime | None = None
) -> Label:
    """Change one of the reviewer's own labels from their history: its value and note (None: as it is).

    Allowed while the queue is open and, in a queue whose disagreements go to adjudication, until an
    adjudicator has taken the item: from then on the adjudicator's label is the item's answer and
    an edit underneath it would rewrite a decided item. Each change is kept as a LabelRevision. An
    item whose labels come to differ (or to agree) by the edit joins (or leaves) the adjudication
    queue, as if it had been labelled that way. The same value and note again change nothing.
    """
    now = now or timezone.now()
    try:
        label_id = int(label_id)
    except (TypeError, ValueError):
        raise ServiceError("must be a label number", field="label") from None
    if value is not None and value not in LabelValue.values:
        raise ServiceError(f"must be one of {', '.join(LabelValue.values)}", field="value")
    found = Label.objects.filter(pk=label_id, reviewer=reviewer).values_list("assignment_id", flat=True).first()
    if found is None:
        raise ServiceError("no such label of yours", field="label")
    # Locked as label_submit and undo lock: the slot, then the assignment with its queue and item
    # rows (FOR UPDATE covers the select_related rows). A label of another slot of the same item
    # takes the same item row, so neither decides adjudication on the other's uncommitted value.
    assignment, _slot = _locked_assignment(found, reviewer)
    queue, item = assignment.queue, assignment.item
    label = Label.objects.select_for_update(of=("self",)).get(pk=label_id)
    value = label.value if value is None else value
    note = label.note if note is None else _check_note(note)
    if value == label.value and note == label.note:
        return label
    refusal = label_edit_refusal(queue=queue, adjudicated=_adjudication_started(queue, label.completion_id))
    if refusal:
        raise ServiceError(refusal, field="label", code="final")
    LabelRevision.objects.create(
        label=label,
        changed_by=reviewer,
        changed_at=now,
        value_before=label.value,
        value_after=value,
        note_before=label.note,
        note_after=note,
    )
    label.value = value
    label.note = note
    label.edited_at = now
    label.save(update_fields=["value", "note", "edited_at"])
    _adjudication_sync(queue, item, now)
    return label


@transaction.atomic
def label_undo(*, reviewer: User, label_id: Any, now: datetime | None = None) -> Assignment:
    """Take back the reviewer's last label (within REVIEW_UNDO_SECONDS): the item is theirs again, unlabelled."""
    now = now or timezone.now()
    try:
        label_id = int(label_id)
    except (TypeError, ValueError) as exc:
        raise ServiceError("must be a label number", field="label") from exc
    label = Label.objects.filter(pk=label_id, reviewer=reviewer).select_related("assignment").first()
    if label is None:
        raise ServiceError("nothing to undo: this label is gone or not yours", field="label", code="stale")
    last = (
        Label.objects.filter(reviewer=reviewer, queue_id=label.queue_id)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    if last != label.pk:
        raise ServiceError("only your last label can be undone", field="label", code="stale")
    if (now - label.created_at).total_seconds() > settings.REVIEW_UNDO_SECONDS:
        raise ServiceError(
            f"too late to undo: labels can be undone for {settings.REVIEW_UNDO_SECONDS} seconds",
            field="label",
            code="stale",
        )
    assignment, slot = _locked_assignment(label.assignment_id, reviewer)
    adjudication_items = QueueItem.objects.filter(
        queue__adjudicates_id=label.queue_id, completion_id=label.completion_id
    )
    if adjudication_items.filter(Q(label_count__gt=0) | Q(assignments__isnull=False)).exists():
        raise ServiceError("this item is already being adjudicated; it can't be undone", field="label", code="stale")
    adjudication_items.delete()
    expires = now + timedelta(seconds=assignment.queue.lease_seconds)
    label.delete()
    QueueItem.objects.filter(pk=assignment.item_id).update(label_count=F("label_count") - 1)
    Assignment.objects.filter(pk=assignment.pk).update(state=Assignment.State.LEASED, leased_at=now, expires_at=expires)
    Slot.objects.filter(pk=slot.pk).update(filled=False, lease=assignment, lease_expires_at=expires)
    return Assignment.objects.select_related("item__completion", "queue").get(pk=assignment.pk)
