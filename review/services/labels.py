"""Labels: a reviewer's label on the slot they lease, edits and undo, and the adjudication queue they feed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
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
    """Record the reviewer's label on the slot they lease. The same label posted again is a no-op.

    Two statements in one transaction on PostgreSQL: the lock (slot, assignment, item: one
    statement, _locked_assignment), then the label with the assignment, slot and item updates (one
    statement). The second starts after the locks are held, so it sees every label of the item
    committed before (another slot's label waits on the item's row), and the disagreement check
    below reads what it returns. A complete item whose labels differ adds the adjudication steps.
    """
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
    item, queue = assignment.item, assignment.queue
    label = Label(
        assignment=assignment,
        queue=queue,
        item=item,
        completion_id=item.completion_id,
        reviewer=reviewer,
        value=value,
        note=note,
        seconds_spent=seconds,
    )
    # Whether the adjudication queue has to be looked at once the item is complete.
    adjudicated = queue.policy != ReviewQueue.Policy.ADJUDICATE and queue.overlap >= 2
    if connection.vendor == "postgresql":
        others = _label_write_postgresql(label, slot, with_values=adjudicated)
    else:
        others = _label_write_portable(label, slot, with_values=adjudicated)
    if adjudicated and item.label_count >= queue.overlap:
        _adjudication_sync(queue, item, now, values=others | {value})
    return LabelResult(label, created=True)


# Raw SQL because the ORM writes one table per statement: the label, the assignment's state, the
# filled slot and the item's count go together in one statement (one round trip). `earlier` reads
# the item's labels committed before this one (the statement's snapshot is taken after the item's
# row was locked), only when the item may need adjudication.
_LABEL_SQL = """
WITH new_label AS (
    INSERT INTO review_label
        (assignment_id, queue_id, item_id, completion_id, reviewer_id, value, note, seconds_spent, created_at)
    VALUES (%(assignment)s, %(queue)s, %(item)s, %(completion)s, %(reviewer)s, %(value)s, %(note)s,
            %(seconds)s, %(created)s)
    RETURNING id
),
labelled AS (
    UPDATE review_assignment SET state = 'labeled' WHERE id = %(assignment)s
),
filled AS (
    UPDATE review_slot SET filled = true WHERE id = %(slot)s
),
counted AS (
    UPDATE review_queueitem SET label_count = label_count + 1 WHERE id = %(item)s RETURNING label_count
)
SELECT new_label.id, counted.label_count, {earlier}
FROM new_label, counted
"""
_EARLIER_VALUES = "(SELECT array_agg(DISTINCT value) FROM review_label WHERE item_id = %(item)s)"


def _label_params(label: Label, slot: Slot) -> dict[str, Any]:
    label.created_at = timezone.now()  # what auto_now_add would write
    return {
        "assignment": label.assignment_id,
        "queue": label.queue_id,
        "item": label.item_id,
        "completion": label.completion_id,
        "reviewer": label.reviewer_id,
        "value": label.value,
        "note": label.note,
        "seconds": label.seconds_spent,
        "created": label.created_at,
        "slot": slot.pk,
    }


def _label_written(label: Label, slot: Slot, label_id: int, label_count: int) -> None:
    """The objects in hand as the statements left their rows."""
    label.pk, label.item.label_count = label_id, label_count
    label._state.adding = False
    label._state.db = connection.alias
    label.assignment.state = Assignment.State.LABELED
    slot.filled = True


def _label_write_postgresql(label: Label, slot: Slot, *, with_values: bool) -> set[str]:
    sql = _LABEL_SQL.format(earlier=_EARLIER_VALUES if with_values else "NULL")
    with connection.cursor() as cursor:
        cursor.execute(sql, _label_params(label, slot))
        row = cursor.fetchone()
    assert row is not None  # the insert always returns its row
    label_id, label_count, earlier = row
    _label_written(label, slot, label_id, label_count)
    return set(earlier or ())


# SQLite: the transaction began IMMEDIATE (behind the writer gate), so it holds the only write lock;
# the same writes as PostgreSQL's one statement, one by one, in raw SQL (the ORM's compiling cost
# more than SQLite's executing).
_LABEL_SQLITE = (
    """INSERT INTO review_label
        (assignment_id, queue_id, item_id, completion_id, reviewer_id, value, note, seconds_spent, created_at)
    VALUES (%(assignment)s, %(queue)s, %(item)s, %(completion)s, %(reviewer)s, %(value)s, %(note)s,
            %(seconds)s, %(created)s)
    RETURNING id""",
    "UPDATE review_assignment SET state = 'labeled' WHERE id = %(assignment)s",
    "UPDATE review_slot SET filled = 1 WHERE id = %(slot)s",
    "UPDATE review_queueitem SET label_count = label_count + 1 WHERE id = %(item)s RETURNING label_count",
)
_EARLIER_VALUES_SQLITE = "SELECT DISTINCT value FROM review_label WHERE item_id = %(item)s"


def _label_write_portable(label: Label, slot: Slot, *, with_values: bool) -> set[str]:
    params = _label_params(label, slot)
    params["created"] = connection.ops.adapt_datetimefield_value(params["created"])
    insert, labelled, filled, counted = _LABEL_SQLITE
    with connection.cursor() as cursor:
        earlier: set[str] = set()
        if with_values:
            cursor.execute(_EARLIER_VALUES_SQLITE, params)
            earlier = {row[0] for row in cursor.fetchall()}
        cursor.execute(insert, params)
        (label_id,) = cursor.fetchone()
        cursor.execute(labelled, params)
        cursor.execute(filled, params)
        cursor.execute(counted, params)
        (label_count,) = cursor.fetchone()
    _label_written(label, slot, label_id, label_count)
    return earlier


def _adjudication_sync(queue: ReviewQueue, item: QueueItem, now: datetime, values: set[str] | None = None) -> None:
    """A complete item of a queue with overlap ≥ 2 is in its adjudication queue exactly when its labels differ.

    Disagreements flow in as soon as the item is complete; an edit that makes the labels agree takes
    the item out again (label_edit has already refused if an adjudicator took it). `values`: the
    item's label values when the caller has them already.
    """
    if queue.policy == ReviewQueue.Policy.ADJUDICATE or not item.label_count >= queue.overlap >= 2:
        return
    if values is None:
        values = set(Label.objects.filter(item=item).values_list("value", flat=True))
    if len(values) > 1:
        _items_add(_adjudication_queue_for(queue), [(item.completion_id, now.timestamp(), False)])
    else:
        QueueItem.objects.filter(queue__adjudicates=queue, completion_id=item.completion_id, label_count=0).exclude(
            Exists(Assignment.objects.filter(item_id=OuterRef("pk")))
        ).delete()


def _adjudication_queue_for(queue: ReviewQueue) -> ReviewQueue:
    # The queue's row is locked first, so two labels completing two items of the queue at once
    # (each holding only its own item's row) can't both find no adjudication queue and make two.
    # NO KEY UPDATE: it doesn't wait on the KEY SHARE locks that every label's foreign key to the
    # queue takes (FOR UPDATE would, and two labels would deadlock on each other's).
    ReviewQueue.objects.select_for_update(no_key=True).filter(pk=queue.pk).values_list("pk").first()
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
