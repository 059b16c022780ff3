"""Writes for review: completions and their imports, queues, leases on slots, labels, undo and edits."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from rebench_site import bounded_json
from rebench_site.errors import ServiceError
from review.models import (
    DEFAULT_MIN_SECONDS_PER_ITEM,
    Assignment,
    Completion,
    ImportJob,
    Label,
    LabelRevision,
    LabelValue,
    QueueItem,
    ReviewQueue,
    Slot,
)
from review.selectors import label_edit_refusal

SLOT_BATCH = 5000

log = logging.getLogger(__name__)


# --- completions -----------------------------------------------------------------------------


def completion_check_text(text: Any, *, field: str = "text") -> str:
    """Refuse what can't be labelled: non-text, empty, or larger than REVIEW_MAX_COMPLETION_BYTES."""
    if not isinstance(text, str):
        raise ServiceError("must be a string", field=field)
    if not text.strip():
        raise ServiceError("is empty", field=field)
    size = len(text.encode("utf-8"))
    if size > settings.REVIEW_MAX_COMPLETION_BYTES:
        raise ServiceError(
            f"is {size:,} bytes; the limit is {settings.REVIEW_MAX_COMPLETION_BYTES:,} bytes", field=field
        )
    return text


def _check_prompt(prompt: Any) -> str:
    if not isinstance(prompt, str):
        raise ServiceError("must be a string", field="prompt")
    if len(prompt.encode("utf-8")) > settings.REVIEW_MAX_COMPLETION_BYTES:
        raise ServiceError(f"is longer than {settings.REVIEW_MAX_COMPLETION_BYTES:,} bytes", field="prompt")
    return prompt


@transaction.atomic
def completion_submit_rewrite(
    *, author: AbstractBaseUser, prompt: str, text: str, parent: Completion | None
) -> Completion:
    """A red-team rewrite: a new `red_team` completion, put into every open verify queue.

    With no open verify queue a default one is made (all reviewers, REVIEW_VERIFY_OVERLAP labels),
    so a rewrite is never left where no one will see it.
    """
    completion = Completion.objects.create(
        prompt=_check_prompt(prompt),
        text=completion_check_text(text),
        source=Completion.Source.RED_TEAM,
        batch="red_team",
        parent=parent,
        created_by=author,
    )
    queues = list(ReviewQueue.objects.select_for_update().filter(policy=ReviewQueue.Policy.VERIFY, is_open=True))
    if not queues:
        queues = [
            ReviewQueue.objects.create(
                name="Verify red-team rewrites",
                policy=ReviewQueue.Policy.VERIFY,
                overlap=settings.REVIEW_VERIFY_OVERLAP,
                lease_seconds=settings.REVIEW_DEFAULT_LEASE_SECONDS,
                source_filter=Completion.Source.RED_TEAM,
                guideline="Is this rewrite injurious? Label what the text describes, not what it was meant to do.",
            )
        ]
    for queue in queues:
        _items_add(queue, [(completion.pk, time.time(), False)])
    return completion


# --- imports ---------------------------------------------------------------------------------

IMPORT_FIELDS = ("prompt", "text", "source", "batch", "external_id", "gold_label")


@dataclass
class ImportError_(Exception):
    """One bad line of an import file; the whole file is refused."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _import_row(raw: dict[str, Any], line: int, default_batch: str) -> Completion:
    if not isinstance(raw, dict):
        raise ImportError_(line, "expected an object with prompt and text")
    unknown = set(raw) - set(IMPORT_FIELDS) - {"id"}
    if unknown:
        raise ImportError_(line, f"unknown field(s): {', '.join(sorted(unknown))}")
    for name in ("prompt", "text"):
        if name not in raw:
            raise ImportError_(line, f"missing field '{name}'")
    try:
        text = completion_check_text(raw["text"])
        prompt = _check_prompt(raw["prompt"])
    except ServiceError as exc:
        raise ImportError_(line, f"{exc.field} {exc.message}") from exc
    source = raw.get("source") or Completion.Source.IN_DISTRIBUTION
    if source not in Completion.Source.values:
        raise ImportError_(line, f"source {source!r} is not one of {', '.join(Completion.Source.values)}")
    gold = raw.get("gold_label") or ""
    if gold and gold not in LabelValue.values:
        raise ImportError_(line, f"gold_label {gold!r} is not one of {', '.join(LabelValue.values)}")
    batch = str(raw.get("batch") or default_batch)[:200]
    external_id = str(raw.get("external_id") or raw.get("id") or "")[:200]
    return Completion(prompt=prompt, text=text, source=source, batch=batch, external_id=external_id, gold_label=gold)


def _decoded_lines(data: bytes) -> Iterator[tuple[int, str]]:
    """Lines of `data` decoded as strict UTF-8 (a BOM allowed), numbered from 1."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportError_(number, f"not valid UTF-8 (byte {exc.start + 1} of the line)") from exc


def completions_parse(*, data: bytes, fmt: str, batch: str = "", progress: Any = None) -> list[Completion]:
    """Check a whole JSONL/CSV file; the first bad line raises ImportError_ naming it. Writes nothing."""
    lines = list(_decoded_lines(data))
    rows: list[Completion] = []
    total = len(lines)
    if fmt == ImportJob.Format.JSONL:
        for number, text in lines:
            if not text.strip():
                continue
            try:
                raw = bounded_json.loads(text)
            except bounded_json.TooDeep as exc:
                raise ImportError_(number, f"not accepted: {exc}") from exc
            except json.JSONDecodeError as exc:
                raise ImportError_(number, f"not valid JSON ({exc.msg})") from exc
            rows.append(_import_row(raw, number, batch))
            if progress and number % 1000 == 0:
                progress(number, total)
    elif fmt == ImportJob.Format.CSV:
        reader = csv.DictReader(io.StringIO("\n".join(text for _, text in lines)))
        if reader.fieldnames is None:
            raise ImportError_(1, "empty file: expected a header row with prompt,text")
        missing = {"prompt", "text"} - set(reader.fieldnames)
        if missing:
            raise ImportError_(1, f"header lacks {', '.join(sorted(missing))}")
        try:
            for raw in reader:
                if None in raw:
                    raise ImportError_(reader.line_num, "more values than header columns")
                rows.append(_import_row({k: v for k, v in raw.items() if v is not None}, reader.line_num, batch))
                if progress and reader.line_num % 1000 == 0:
                    progress(reader.line_num, total)
        except csv.Error as exc:
            raise ImportError_(reader.line_num, f"bad CSV ({exc})") from exc
    else:
        raise ServiceError(f"format must be one of {', '.join(ImportJob.Format.values)}", field="format")
    if not rows:
        raise ImportError_(1, "no completions in the file")
    return rows


def import_job_create(*, created_by: AbstractBaseUser | None, upload: Any, fmt: str = "", batch: str = "") -> ImportJob:
    """Store the upload and queue the Celery job that imports it (after commit)."""
    name = getattr(upload, "name", "") or "upload"
    if not fmt:
        fmt = ImportJob.Format.CSV if name.lower().endswith(".csv") else ImportJob.Format.JSONL
    if fmt not in ImportJob.Format.values:
        raise ServiceError(f"must be one of {', '.join(ImportJob.Format.values)}", field="format")
    size = getattr(upload, "size", None)
    if size is not None and size > settings.REVIEW_IMPORT_MAX_BYTES:
        raise ServiceError(f"is {size:,} bytes; the limit is {settings.REVIEW_IMPORT_MAX_BYTES:,}", field="file")
    if size == 0:
        raise ServiceError("is empty", field="file")
    with transaction.atomic():
        job = ImportJob(created_by=created_by, format=fmt, batch=batch[:200], original_name=name[:255])
        job.file.save(name.rsplit("/", 1)[-1] or "upload", upload, save=False)
        job.save()
        job_id = job.pk

        def enqueue() -> None:
            from review.tasks import import_job_run_task

            import_job_run_task.delay(job_id)

        transaction.on_commit(enqueue)
    return job


def import_job_run(*, job_id: int) -> ImportJob:
    """Check every line (progress saved as it goes), then write all completions in one transaction."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job_id)
        if job.status != ImportJob.Status.PENDING:
            return job  # a redelivered task: the first run owns it
        job.status = ImportJob.Status.RUNNING
        job.save(update_fields=["status"])
    with job.file.open("rb") as handle:
        data = handle.read()

    def progress(done: int, total: int) -> None:
        ImportJob.objects.filter(pk=job_id).update(lines_done=done, lines_total=total)

    try:
        rows = completions_parse(data=data, fmt=job.format, batch=job.batch, progress=progress)
        with transaction.atomic():
            for row in rows:
                row.created_by_id = job.created_by_id
            Completion.objects.bulk_create(rows, batch_size=2000)
            total = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
            ImportJob.objects.filter(pk=job_id).update(
                status=ImportJob.Status.DONE,
                created_count=len(rows),
                lines_done=total,
                lines_total=total,
                finished_at=timezone.now(),
            )
    except (ImportError_, ServiceError) as exc:
        ImportJob.objects.filter(pk=job_id).update(
            status=ImportJob.Status.FAILED, error=str(exc), finished_at=timezone.now()
        )
    except Exception:
        # Whatever else goes wrong, the job ends (a job left running would show progress forever
        # and, redelivered, be skipped as the first run's).
        log.exception("completion import %s failed", job_id)
        ImportJob.objects.filter(pk=job_id).update(
            status=ImportJob.Status.FAILED,
            error="The import failed on the server; the file was not imported.",
            finished_at=timezone.now(),
        )
    job.refresh_from_db()
    return job


# --- queues ----------------------------------------------------------------------------------


def current_threshold() -> float:
    """The active classifier threshold (the classifier app's setting) or REVIEW_DEFAULT_THRESHOLD."""
    from django.apps import apps

    if not apps.is_installed("review.classifier"):
        return settings.REVIEW_DEFAULT_THRESHOLD
    from review.classifier.selectors import active_threshold

    value = active_threshold()
    return settings.REVIEW_DEFAULT_THRESHOLD if value is None else float(value)


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


@transaction.atomic
def queue_close(*, queue: ReviewQueue) -> ReviewQueue:
    queue.is_open = False
    queue.save(update_fields=["is_open"])
    return queue


# --- leases ----------------------------------------------------------------------------------


def reviewer_may_work(*, queue: ReviewQueue, reviewer: AbstractBaseUser) -> bool:
    from rebench_site.roles import REVIEWER, has_role

    if not has_role(reviewer, REVIEWER):
        return False
    return queue.all_reviewers or queue.reviewers.filter(pk=reviewer.pk).exists()


def _active_leases(queue: ReviewQueue, reviewer: AbstractBaseUser, now: datetime) -> list[Assignment]:
    return list(
        Assignment.objects.filter(
            queue=queue, reviewer=reviewer, state=Assignment.State.LEASED, expires_at__gt=now, slot__lease=F("pk")
        )
        .select_related("item__completion", "queue")
        .order_by("leased_at", "id")
    )


def lease_next(
    *, queue: ReviewQueue, reviewer: AbstractBaseUser, exclude: Iterable[int] = (), now: datetime | None = None
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
def _lease_pick(queue: ReviewQueue, reviewer: AbstractBaseUser, now: datetime) -> Assignment | None:
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


def _locked_assignment(assignment_id: Any, reviewer: AbstractBaseUser) -> tuple[Assignment, Slot]:
    """Lock the slot, then the assignment (always in this order, as labels and picks do)."""
    try:
        assignment_id = int(assignment_id)
    except (TypeError, ValueError) as exc:
        raise ServiceError("must be an item number", field="assignment") from exc
    row = Assignment.objects.filter(pk=assignment_id, reviewer=reviewer).values_list("slot_id", flat=True).first()
    if row is None:
        raise ServiceError("you hold no lease on this item", field="assignment")
    slot = Slot.objects.select_for_update().get(pk=row)
    assignment = Assignment.objects.select_for_update().select_related("queue", "item").get(pk=assignment_id)
    return assignment, slot


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


@transaction.atomic
def lease_renew(
    *, reviewer: AbstractBaseUser, assignment_ids: Iterable[Any], now: datetime | None = None
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
def lease_skip(*, reviewer: AbstractBaseUser, assignment_id: Any, now: datetime | None = None) -> Assignment:
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
def lease_release(*, reviewer: AbstractBaseUser, assignment_id: Any) -> None:
    """Drop a lease on an item the reviewer never saw (a prefetched one): as if it was never handed out."""
    assignment, slot = _locked_assignment(assignment_id, reviewer)
    if assignment.state != Assignment.State.LEASED:
        raise ServiceError("only an unlabelled item can be released", field="assignment")
    if slot.lease_id == assignment.pk:
        Slot.objects.filter(pk=slot.pk).update(lease=None, lease_expires_at=None)
    assignment.delete()


# --- labels ----------------------------------------------------------------------------------


@dataclass
class LabelResult:
    label: Label
    created: bool


@transaction.atomic
def label_submit(
    *,
    reviewer: AbstractBaseUser,
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
    note = note.strip()
    if len(note) > 5000:
        raise ServiceError("is longer than 5,000 characters", field="note")
    return note


@transaction.atomic
def label_edit(
    *, reviewer: AbstractBaseUser, label_id: Any, value: Any = None, note: Any = None, now: datetime | None = None
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
def label_undo(*, reviewer: AbstractBaseUser, label_id: Any, now: datetime | None = None) -> Assignment:
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
