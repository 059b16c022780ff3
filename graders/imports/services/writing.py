"""Runs written in bulk: one finished Attempt per record, its score log and final score; COPY on PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import connection, models, transaction
from django.utils import timezone

from graders.imports import formats
from graders.imports.services._shared import _request_leaderboard_recompute
from graders.models import AttemptScore, ScoreLogEntry
from graders.services import aggregate, normalise
from trials.models import Attempt

WRITE_CHUNK = 500


@transaction.atomic
def runs_write(*, records: Iterable[formats.RunRecord], source: str, by: User | None) -> tuple[int, int, int]:
    """Create or update one finished Attempt per record, keyed by (source, run id); its score log is replaced.

    Written in bulk, a few queries per chunk of runs rather than per run, so a file of thousands of
    runs imports in seconds; only one chunk is held at a time. Returns (runs created, runs updated,
    score-log entries written).
    """
    now = timezone.now()
    created = updated = written = 0
    iterator = iter(records)
    while chunk := list(itertools.islice(iterator, WRITE_CHUNK)):
        c, u, w = _write_chunk(chunk, source=source, by=by, now=now)
        created, updated, written = created + c, updated + u, written + w
    _request_leaderboard_recompute()
    return created, updated, written


def _differs(attempt: Attempt, name: str, value: Any) -> bool:
    if name in ("environment", "configuration"):
        # By id: the row itself isn't loaded.
        by_id: bool = getattr(attempt, f"{name}_id") != (value.pk if value is not None else None)
        return by_id
    differs: bool = getattr(attempt, name) != value
    return differs


def _write_chunk(
    records: list[formats.RunRecord], *, source: str, by: User | None, now: datetime
) -> tuple[int, int, int]:
    existing = {
        a.external_id: a
        for a in Attempt.objects.select_for_update().filter(
            source=source, external_id__in=[r.external_id for r in records]
        )
    }
    fresh: list[Attempt] = []
    stale: list[Attempt] = []
    by_record: list[Attempt] = []
    for record in records:
        attempt = existing.get(record.external_id)
        # A run whose file gives no start keeps the start its first import guessed, so a re-import changes nothing.
        started = record.started_at or (
            attempt.started_at if attempt else now - timedelta(seconds=record.time_limit_seconds)
        )
        values: dict[str, Any] = {
            "participant_kind": record.participant_kind,
            "participant_label": record.participant_label,
            "agent_name": record.agent_name,
            "agent_model": record.agent_model,
            "agent_scaffold": record.agent_scaffold,
            "environment": record.environment,
            "configuration": record.configuration,
            "time_limit": timedelta(seconds=record.time_limit_seconds),
            "started_at": started,
            "ended_at": started + timedelta(seconds=record.time_limit_seconds),
            "status": Attempt.Status.ENDED,
            "end_reason": Attempt.EndReason.IMPORTED,
        }
        if attempt is None:
            attempt = Attempt(source=source, external_id=record.external_id, submitted_by=by, **values)
            fresh.append(attempt)
        else:
            # Only what changed is written, one UPDATE per changed run: Django's bulk_update builds a
            # CASE per field and row, which took over a minute for 10,000 runs.
            changed = [name for name, value in values.items() if _differs(attempt, name, value)]
            for name in changed:
                setattr(attempt, name, values[name])
            if changed:
                attempt.save(update_fields=changed)
            stale.append(attempt)
        by_record.append(attempt)
    _attempts_insert(fresh)
    if fresh and any(a.pk is None for a in fresh):  # COPY, or a backend that doesn't return ids from bulk inserts
        ids = dict(
            Attempt.objects.filter(source=source, external_id__in=[a.external_id for a in fresh]).values_list(
                "external_id", "pk"
            )
        )
        for attempt in fresh:
            attempt.pk = ids[attempt.external_id]
    if stale:
        ScoreLogEntry.objects.filter(attempt__in=stale).delete()
        AttemptScore.objects.filter(attempt__in=stale).delete()
    entries: list[tuple[Any, ...]] = []
    scores: list[tuple[Any, ...]] = []
    for record, attempt in zip(records, by_record, strict=True):
        # Log order is working-time order: each entry is stamped at the run's start plus its elapsed time.
        for entry in record.entries:
            entries.append(
                (
                    attempt.pk,
                    attempt.started_at + timedelta(seconds=entry.elapsed_seconds),
                    entry.elapsed_seconds,
                    entry.score,
                    entry.message,
                    entry.details,
                    "",
                )
            )
        # The same aggregate and normalisation as grading's attempt_score_update, over the log just built.
        logged = [e.score for e in record.entries]
        raw = aggregate(logged, record.environment.aggregation)
        normalised = normalise(record.configuration or record.environment, raw)
        scores.append((attempt.pk, raw, normalised, sum(1 for v in logged if v is not None), True, now))
    _rows_insert(ScoreLogEntry, ENTRY_COLUMNS, entries)
    _rows_insert(AttemptScore, SCORE_COLUMNS, scores)
    return len(fresh), len(stale), len(entries)


ENTRY_COLUMNS = ("attempt_id", "scored_at", "elapsed_seconds", "score", "message", "details", "scorer_digest")
SCORE_COLUMNS = ("attempt_id", "raw", "normalised", "valid_entries", "is_final", "computed_at")
# COPY for plain rows on PostgreSQL; tests turn it off to check that both paths write the same rows.
COPY_ROWS = True


def _copy_converter(field: models.Field[Any, Any]) -> Callable[[Any], Any] | None:
    """How COPY must get a column's values: JSON wrapped as jsonb; None where the value goes as it is
    (choices are str subclasses, which psycopg writes as their value). Decided once per column."""
    if isinstance(field, models.JSONField):
        from psycopg.types.json import Jsonb

        return lambda v: None if v is None else Jsonb(v)
    return None


def _attempts_insert(attempts: list[Attempt]) -> None:
    """New runs in: COPY on PostgreSQL (their ids are read back by run id), else bulk_create."""
    if not (attempts and COPY_ROWS and connection.vendor == "postgresql"):
        Attempt.objects.bulk_create(attempts)
        return
    fields = [f for f in Attempt._meta.concrete_fields if not f.primary_key]
    rows = [tuple(f.pre_save(attempt, add=True) for f in fields) for attempt in attempts]  # auto_now_add too
    _rows_insert(Attempt, tuple(f.attname for f in fields), rows)


def _rows_insert(model: type[models.Model], columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Insert rows whose ids nobody needs back: COPY on PostgreSQL, else bulk_create.

    An import of 80,000 runs spent most of its time in bulk_create building model instances and
    binding parameters for the 240,000 score-log entries; COPY streams the same values.
    """
    if not rows:
        return
    if COPY_ROWS and connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        by_attname = {f.attname: f for f in model._meta.concrete_fields}
        names = ", ".join(quote(by_attname[c].column) for c in columns)
        converters = [(i, c) for i, name in enumerate(columns) if (c := _copy_converter(by_attname[name]))]
        # wrap_database_errors: psycopg's errors from COPY become Django's (a unique violation is an
        # IntegrityError, which the import's retry relies on), as they do from execute().
        with (
            connection.wrap_database_errors,
            connection.cursor() as cursor,
            cursor.copy(f"COPY {quote(model._meta.db_table)} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                if converters:
                    values = list(row)
                    for i, convert in converters:
                        values[i] = convert(values[i])
                    row = tuple(values)
                copy.write_row(row)
        return
    model._default_manager.bulk_create(
        (model(**dict(zip(columns, row, strict=True))) for row in rows), batch_size=WRITE_CHUNK
    )
