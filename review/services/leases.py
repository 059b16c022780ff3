"""Leases on slots: a reviewer's next item, the heartbeat that renews it, skip and release."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from rebench_site.errors import ServiceError
from review.models import Assignment, Completion, QueueItem, ReviewQueue, Slot
from review.services._common import _locked_assignment, _require_live_lease


def reviewer_may_work(*, queue: ReviewQueue, reviewer: User) -> bool:
    from rebench_site.roles import REVIEWER, has_role

    if not has_role(reviewer, REVIEWER):
        return False
    return queue.all_reviewers or queue.reviewers.filter(pk=reviewer.pk).exists()


def lease_next(
    *, queue: ReviewQueue, reviewer: User, exclude: Iterable[int] = (), now: datetime | None = None
) -> Assignment | None:
    """The reviewer's next item: a lease they already hold (not in `exclude`), else a free slot; None when done.

    The pick takes the first free slot in policy order whose item this reviewer has never had (a
    slot whose lease has expired counts as free). On PostgreSQL the whole step — the leases already
    held, the pick with FOR UPDATE SKIP LOCKED (concurrent reviewers pass over each other's rows
    instead of queueing on them), the new assignment and the slot's lease — is one statement, so
    one transaction and one round trip. Elsewhere (SQLite) the pick is a short IMMEDIATE
    transaction of three statements, with the reads before and after it outside the write lock.
    """
    if not queue.is_open:
        raise ServiceError("this queue is closed", field="queue")
    if not reviewer_may_work(queue=queue, reviewer=reviewer):
        raise ServiceError("you are not a reviewer of this queue", field="queue")
    now = now or timezone.now()
    excluded = sorted({int(x) for x in exclude})
    pick = _lease_next_postgresql if connection.vendor == "postgresql" else _lease_next_portable
    for _attempt in range(5):
        outcome = pick(queue, reviewer, excluded, now)
        if not isinstance(outcome, _Again):
            return outcome
    raise ServiceError("could not lease an item; try again", field="queue")


class _Again:
    """The pick raced the same reviewer's other request (two tabs) for two slots of one item: the
    unique (item, reviewer) kept one of them; pick again."""


_AGAIN = _Again()


def _too_many(held: int) -> ServiceError:
    return ServiceError(f"you already hold {held} items of this queue", field="queue")


def _fields(model: type[Model], alias: str) -> str:
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


def _attnames(model: type[Model]) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


def _row_columns(assignment: str) -> str:
    """The columns _assignment_from_row reads: the assignment's (as `assignment`), its item's (`i`)
    and its completion's (`c`), each in model order."""
    return f"{_fields(Assignment, assignment)}, {_fields(QueueItem, 'i')}, {_fields(Completion, 'c')}"


# Raw SQL because the ORM can't write a data-modifying CTE: the leases held, the pick, the insert
# of the assignment and the slot's lease are one statement (one implicit transaction, one round
# trip). `held` and `kept` decide whether to pick at all (a lease already held that the client
# doesn't show yet is handed back instead; REVIEW_MAX_LEASES caps the rest). ON CONFLICT answers
# the race of one reviewer's two tabs for two slots of one item without an error that would undo
# the caller's transaction. Rows written by the CTEs are invisible to the rest of the statement, so
# the new assignment comes from RETURNING, a held one from the table; either is joined to its item
# and completion for the page.
_NEXT_SQL = f"""
WITH held AS (
    SELECT a.id, a.leased_at FROM review_assignment a JOIN review_slot s ON s.lease_id = a.id
    WHERE a.queue_id = %(queue)s AND a.reviewer_id = %(reviewer)s AND a.state = 'leased' AND a.expires_at > %(now)s
),
kept AS (
    SELECT id FROM held WHERE id <> ALL(%(exclude)s::bigint[]) ORDER BY leased_at, id LIMIT 1
),
pick AS (
    SELECT s.id, s.item_id FROM review_slot s
    WHERE s.queue_id = %(queue)s AND NOT s.filled
      AND (s.lease_expires_at IS NULL OR s.lease_expires_at <= %(now)s)
      AND NOT EXISTS (
          SELECT 1 FROM review_assignment seen WHERE seen.item_id = s.item_id AND seen.reviewer_id = %(reviewer)s
      )
      AND NOT EXISTS (SELECT 1 FROM kept)
      AND (SELECT count(*) FROM held) < %(max_leases)s
    ORDER BY s.sort_key, s.id
    LIMIT 1
    FOR UPDATE OF s SKIP LOCKED
),
leased AS (
    INSERT INTO review_assignment (queue_id, item_id, slot_id, reviewer_id, state, leased_at, expires_at)
    SELECT %(queue)s, pick.item_id, pick.id, %(reviewer)s, 'leased', %(now)s, %(expires)s FROM pick
    ON CONFLICT (item_id, reviewer_id) DO NOTHING
    RETURNING {", ".join(f'"{f.column}"' for f in Assignment._meta.concrete_fields)}
),
marked AS (
    UPDATE review_slot SET lease_id = leased.id, lease_expires_at = leased.expires_at
    FROM leased WHERE review_slot.id = leased.slot_id
),
chosen AS (
    SELECT {_fields(Assignment, "leased")} FROM leased
    UNION ALL
    SELECT {_fields(Assignment, "a")} FROM review_assignment a JOIN kept ON kept.id = a.id
)
SELECT (SELECT count(*) FROM held), (SELECT count(*) FROM pick),
       {_row_columns("chosen")}
FROM (SELECT 1) AS one
LEFT JOIN chosen ON true
LEFT JOIN review_queueitem i ON i.id = chosen.item_id
LEFT JOIN review_completion c ON c.id = i.completion_id
"""


def _lease_next_postgresql(
    queue: ReviewQueue, reviewer: User, excluded: list[int], now: datetime
) -> Assignment | None | _Again:
    params: dict[str, Any] = {
        "queue": queue.pk,
        "reviewer": reviewer.pk,
        "now": now,
        "expires": now + timedelta(seconds=queue.lease_seconds),
        "exclude": excluded,
        "max_leases": settings.REVIEW_MAX_LEASES,
    }
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_SQL, params)
        row = cursor.fetchone()
    assert row is not None  # the statement always answers one row
    held, picked = row[0], row[1]
    if row[2] is None:
        if picked:
            return _AGAIN
        if held >= settings.REVIEW_MAX_LEASES:
            raise _too_many(held)
        return None
    return _assignment_from_row(list(row[2:]), queue, reviewer)


def _assignment_from_row(values: list[Any], queue: ReviewQueue, reviewer: User) -> Assignment:
    """An assignment with its item and completion from one row of their columns, in model order."""
    a_names, i_names, c_names = _attnames(Assignment), _attnames(QueueItem), _attnames(Completion)
    db = connection.alias
    if connection.vendor != "postgresql":
        # SQLite hands back text for datetimes and 0/1 for booleans: Django's converters, as the ORM applies them.
        values = _converted(values, [Assignment, QueueItem, Completion])
    assignment = Assignment.from_db(db, a_names, values[: len(a_names)])
    item = QueueItem.from_db(db, i_names, values[len(a_names) : len(a_names) + len(i_names)])
    item.completion = Completion.from_db(db, c_names, values[len(a_names) + len(i_names) :])
    assignment.item = item
    assignment.queue = queue
    assignment.reviewer = reviewer
    return assignment


def _converted(values: list[Any], models: list[type[Model]]) -> list[Any]:
    # Any: django-stubs doesn't declare Field.get_db_converters.
    fields: list[Any] = [field for model in models for field in model._meta.concrete_fields]
    out = []
    for value, field in zip(values, fields, strict=True):
        expression = field.get_col(field.model._meta.db_table)
        for converter in connection.ops.get_db_converters(expression) + field.get_db_converters(connection):
            value = converter(value, expression, connection)
        out.append(value)
    return out


# SQLite, in raw SQL for the same reason as PostgreSQL's statement, minus what SQLite lacks (SKIP
# LOCKED, data-modifying CTEs): its writers take turns (transactions begin IMMEDIATE behind the
# writer gate), so the pick is two statements in a short transaction of its own, and the reads
# before and after it run outside the write lock (WAL lets them run beside a writer).
_ITEM_JOIN = "JOIN review_queueitem i ON i.id = a.item_id JOIN review_completion c ON c.id = i.completion_id"
_HELD_SQLITE = f"""
SELECT {_row_columns("a")}
FROM review_assignment a JOIN review_slot s ON s.lease_id = a.id {_ITEM_JOIN}
WHERE a.queue_id = %(queue)s AND a.reviewer_id = %(reviewer)s AND a.state = 'leased' AND a.expires_at > %(now)s
ORDER BY a.leased_at, a.id
"""
_PICK_SQLITE = """
INSERT INTO review_assignment (queue_id, item_id, slot_id, reviewer_id, state, leased_at, expires_at)
SELECT %(queue)s, s.item_id, s.id, %(reviewer)s, 'leased', %(now)s, %(expires)s FROM review_slot s
WHERE s.queue_id = %(queue)s AND NOT s.filled
  AND (s.lease_expires_at IS NULL OR s.lease_expires_at <= %(now)s)
  AND NOT EXISTS (
      SELECT 1 FROM review_assignment seen WHERE seen.item_id = s.item_id AND seen.reviewer_id = %(reviewer)s
  )
ORDER BY s.sort_key, s.id
LIMIT 1
RETURNING id, slot_id
"""
_LEASE_SLOT_SQLITE = "UPDATE review_slot SET lease_id = %(lease)s, lease_expires_at = %(expires)s WHERE id = %(slot)s"
_ASSIGNMENT_SQLITE = f"""
SELECT {_row_columns("a")}
FROM review_assignment a {_ITEM_JOIN}
WHERE a.id = %(id)s
"""


def _lease_next_portable(
    queue: ReviewQueue, reviewer: User, excluded: list[int], now: datetime
) -> Assignment | None | _Again:
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(_HELD_SQLITE, {"queue": queue.pk, "reviewer": reviewer.pk, "now": adapt(now)})
        held = cursor.fetchall()
    # A lease already held comes back from that one read (its id is the row's first column).
    for row in held:
        if row[0] not in excluded:
            return _assignment_from_row(list(row), queue, reviewer)
    if len(held) >= settings.REVIEW_MAX_LEASES:
        raise _too_many(len(held))
    try:
        picked = _lease_pick(queue, reviewer, now)
    except IntegrityError:
        return _AGAIN
    if picked is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_ASSIGNMENT_SQLITE, {"id": picked})
        leased = cursor.fetchone()
    assert leased is not None  # just leased by this reviewer, in a transaction that committed
    return _assignment_from_row(list(leased), queue, reviewer)


@transaction.atomic
def _lease_pick(queue: ReviewQueue, reviewer: User, now: datetime) -> int | None:
    adapt = connection.ops.adapt_datetimefield_value
    expires = adapt(now + timedelta(seconds=queue.lease_seconds))
    with connection.cursor() as cursor:
        cursor.execute(
            _PICK_SQLITE, {"queue": queue.pk, "reviewer": reviewer.pk, "now": adapt(now), "expires": expires}
        )
        row = cursor.fetchone()
        if row is None:
            return None
        lease, slot = row
        cursor.execute(_LEASE_SLOT_SQLITE, {"lease": lease, "expires": expires, "slot": slot})
    return int(lease)


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
