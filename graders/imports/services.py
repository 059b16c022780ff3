"""Writes for run imports and the harness API: runs in as Attempts, their score logs, all or nothing."""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from audit.services import audit_record
from environments.models import CONFIGURATION_NAME, Environment, EnvironmentConfiguration
from environments.services import environment_configuration_for
from graders.imports import formats
from graders.imports.models import RunImport
from graders.models import AttemptScore, ScoreLogEntry
from graders.services import aggregate, attempt_score_update, normalise
from rebench_site import roles
from rebench_site.errors import NotAllowed, ServiceError
from trials.models import Attempt

log = logging.getLogger(__name__)
User = AbstractBaseUser
SOURCE_OF_KIND = {
    formats.KIND_INSPECT: Attempt.Source.INSPECT,
    formats.KIND_METR_RUNS: Attempt.Source.METR_RUNS,
    formats.KIND_FILE: Attempt.Source.FILE,
}


def _request_leaderboard_recompute() -> None:
    from graders.leaderboards.services import leaderboard_request_recompute  # leaderboards read what we write

    leaderboard_request_recompute()


def _max_bytes() -> int:
    return int(settings.RUN_IMPORT_MAX_BYTES)


def refuse_if_too_large(size: int) -> None:
    """Checked before a byte of the file is stored or read."""
    if size > _max_bytes():
        raise formats.ImportRefused(
            f"the file is {size / 2**20:.1f} MiB; imports take at most {_max_bytes() / 2**20:.0f} MiB.", field="file"
        )


# --- imports ---------------------------------------------------------------------------------------


@transaction.atomic
def run_import_create(
    *,
    upload: UploadedFile | IO[bytes],
    name: str,
    size: int,
    kind: str = RunImport.Kind.AUTO,
    configuration: str = EnvironmentConfiguration.FULL,
    by: User | None,
    queue: bool = True,
) -> RunImport:
    """Store the file and queue its import (a Celery job, after commit). Admins only (or the CLI: by=None).

    `configuration` is the scale of rows that don't name their own (METR runs are always `full`).
    """
    if by is not None and not roles.is_admin(by):
        raise NotAllowed("Only admins import runs.")
    if kind not in RunImport.Kind.values:
        raise ServiceError(f"Unknown format {kind!r}; one of: {', '.join(RunImport.Kind.values)}.", field="kind")
    configuration = configuration_name_check(configuration)
    refuse_if_too_large(size)
    if size == 0:
        raise formats.ImportRefused("the file is empty.", field="file")
    name = Path(name).name[:255] or "upload"
    run_import = RunImport(original_name=name, size_bytes=size, kind=kind, configuration=configuration, created_by=by)
    run_import.file.save(name, upload if isinstance(upload, File) else File(upload, name=name), save=False)
    run_import.save()
    if queue:
        _queue(run_import.pk)
    return run_import


def configuration_name_check(name: Any) -> str:
    """A configuration name as the forms and the API take it (whether an environment has it is checked per run)."""
    if not isinstance(name, str) or not CONFIGURATION_NAME.fullmatch(name.strip()):
        raise ServiceError(
            "Name a configuration: small, full (RE-Bench's tasks) or a custom configuration's name.",
            field="configuration",
        )
    return name.strip()


def _queue(pk: int) -> None:
    from graders.imports.tasks import run_import_process

    transaction.on_commit(lambda: run_import_process.delay(pk))


def _progress_writer(run_import_id: int) -> formats.Progress:
    """Progress goes to the row in its own small writes, so the page sees it while the file is read."""
    every = max(1, int(settings.RUN_IMPORT_PROGRESS_EVERY))

    def write(done: int, total: int) -> None:
        if done % every == 0 or done == total:
            RunImport.objects.filter(pk=run_import_id).update(processed=done, total=max(total, done))

    return write


def run_import_execute(*, run_import_id: int, now: datetime | None = None) -> RunImport:
    """Read and check the whole file, then write every run in one transaction; a refusal writes no run.

    The file is read twice, a run at a time, never held whole: once to check it (the page follows
    the progress), once to write it in chunks inside one transaction. The upload is deleted once
    the import is done or refused; the row keeps its name, size and outcome.
    Safe to run again (a redelivered job): a finished import is left as it is, and an interrupted
    one starts over, which the all-or-nothing write makes harmless.
    """
    run_import = RunImport.objects.get(pk=run_import_id)
    if run_import.is_finished:
        return run_import
    started = now or timezone.now()
    RunImport.objects.filter(pk=run_import_id).update(
        status=RunImport.Status.VALIDATING, started_at=started, processed=0, error="", error_line=None, error_field=""
    )
    try:
        path = Path(run_import.file.path)
        refuse_if_too_large(path.stat().st_size)
        kind = run_import.kind
        if kind == RunImport.Kind.AUTO:
            kind = formats.detect_kind(path, run_import.original_name)
        RunImport.objects.filter(pk=run_import_id).update(detected_kind=kind)
        configuration = run_import.configuration

        def read(progress: formats.Progress | None = None) -> Iterator[formats.RunRecord]:
            return formats.records(path, kind, configuration=configuration, progress=progress)

        total = sum(1 for _ in read(_progress_writer(run_import_id)))
        RunImport.objects.filter(pk=run_import_id).update(status=RunImport.Status.WRITING, total=total)
        created, updated, entries = _runs_write_retrying(read, SOURCE_OF_KIND[kind], run_import.created_by)
    except formats.ImportRefused as exc:
        return _finish(run_import, status=RunImport.Status.FAILED, error=exc.reason, line=exc.line, field=exc.field)
    except ServiceError as exc:
        return _finish(run_import, status=RunImport.Status.FAILED, error=exc.message, field=exc.field)
    except Exception as exc:  # whatever went wrong, the page must say so rather than spin forever
        log.exception("run import %s failed", run_import_id)
        return _finish(run_import, status=RunImport.Status.FAILED, error=f"The import failed on the server: {exc}")
    audit_record(
        actor=run_import.created_by,
        action="runs.import",
        subject=f"run import {run_import_id} ({run_import.original_name})"[:200],
        after={
            "kind": kind,
            "configuration": configuration,
            "runs_created": created,
            "runs_updated": updated,
            "entries": entries,
        },
    )
    return _finish(
        run_import,
        status=RunImport.Status.DONE,
        runs_created=created,
        runs_updated=updated,
        entries_written=entries,
        processed=created + updated,
    )


WRITE_TRIES = 3


def _runs_write_retrying(
    read: Callable[[], Iterable[formats.RunRecord]], source: str, by: User | None
) -> tuple[int, int, int]:
    """Two imports of the same new runs at once: the loser's insert hits the unique key, and on a
    retry it finds the winner's runs (committed by then) and updates them. `read` reads the file anew."""
    for attempt in range(WRITE_TRIES):
        try:
            return runs_write(records=read(), source=source, by=by)
        except IntegrityError:
            if attempt == WRITE_TRIES - 1:
                raise
    raise AssertionError("unreachable")


def _finish(
    run_import: RunImport, *, status: str, error: str = "", line: int | None = None, field: str = "", **counts: int
) -> RunImport:
    """Record the outcome and delete the upload: what was in it now lives in the runs (or was refused)."""
    if run_import.file:
        run_import.file.delete(save=False)
    RunImport.objects.filter(pk=run_import.pk).update(
        status=status,
        error=error,
        error_line=line,
        error_field=field if error else "",
        finished_at=timezone.now(),
        file="",
        **counts,
    )
    return RunImport.objects.get(pk=run_import.pk)


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
        return getattr(attempt, f"{name}_id") != (value.pk if value is not None else None)
    return getattr(attempt, name) != value


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
        values = [e.score for e in record.entries]
        raw = aggregate(values, record.environment.aggregation)
        normalised = normalise(record.configuration or record.environment, raw)
        scores.append((attempt.pk, raw, normalised, sum(1 for v in values if v is not None), True, now))
    _rows_insert(ScoreLogEntry, ENTRY_COLUMNS, entries)
    _rows_insert(AttemptScore, SCORE_COLUMNS, scores)
    return len(fresh), len(stale), len(entries)


ENTRY_COLUMNS = ("attempt_id", "scored_at", "elapsed_seconds", "score", "message", "details", "scorer_digest")
SCORE_COLUMNS = ("attempt_id", "raw", "normalised", "valid_entries", "is_final", "computed_at")
# COPY for plain rows on PostgreSQL; tests turn it off to check that both paths write the same rows.
COPY_ROWS = True


def _copy_converter(field: models.Field) -> Callable[[Any], Any] | None:
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
    model.objects.bulk_create((model(**dict(zip(columns, row, strict=True))) for row in rows), batch_size=WRITE_CHUNK)


# --- the harness API ------------------------------------------------------------------------------


def _may_write(attempt: Attempt, by: User) -> None:
    """A harness writes only the runs it created; admins write any API run."""
    if attempt.source != Attempt.Source.API:
        raise NotAllowed("Only runs entered through this API are written through it.")
    if attempt.submitted_by_id != by.pk and not roles.is_admin(by):
        raise NotAllowed("Another harness created that run.")


def _may_use_api(by: User) -> None:
    if not (roles.is_admin(by) or roles.has_role(by, roles.HARNESS)):
        raise NotAllowed("Agent runs are entered by harness accounts and admins.")


@transaction.atomic
def agent_run_create(
    *,
    by: User,
    run_id: str,
    environment: str,
    agent_name: str,
    agent_model: str = "",
    agent_scaffold: str = "",
    configuration: str = EnvironmentConfiguration.FULL,
    time_limit_seconds: float | None = None,
    started_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[Attempt, bool]:
    """Create the run, or update it when this harness sent the same run id before. Returns (run, created)."""
    _may_use_api(by)
    now = now or timezone.now()
    run_id = (run_id or "").strip()
    if not run_id:
        raise ServiceError("Give the run's id in your harness.", field="run_id")
    if len(run_id) > formats.MAX_ID_LENGTH:
        raise ServiceError(f"At most {formats.MAX_ID_LENGTH} characters.", field="run_id")
    env = Environment.objects.filter(slug=environment).first()
    if env is None:
        raise ServiceError(f"Unknown environment {environment!r}.", field="environment")
    if not (agent_name or "").strip():
        raise ServiceError("Name the agent.", field="agent_name")
    scale = environment_configuration_for(environment=env, name=configuration_name_check(configuration))
    limit = env.time_limit if time_limit_seconds is None else _positive_duration(time_limit_seconds)
    if started_at is not None and timezone.is_naive(started_at):
        raise ServiceError("Give the time zone too.", field="started_at")
    fields: dict[str, Any] = {
        "participant_kind": Attempt.ParticipantKind.AGENT,
        "agent_name": agent_name.strip()[:200],
        "agent_model": (agent_model or "").strip()[:200],
        "agent_scaffold": (agent_scaffold or "").strip()[:200],
        "environment": env,
        "configuration": scale,
        "time_limit": limit,
    }
    attempt = Attempt.objects.select_for_update().filter(source=Attempt.Source.API, external_id=run_id).first()
    if attempt is not None:
        _may_write(attempt, by)
        if attempt.score_log.filter(elapsed_seconds__gt=limit.total_seconds()).exists():
            raise ServiceError("The run has score-log entries beyond that run length.", field="time_limit_seconds")
        environment_changed = (attempt.environment_id, attempt.configuration_id) != (env.pk, scale.pk)
        for name, value in fields.items():
            setattr(attempt, name, value)
        if started_at is not None:
            attempt.started_at = started_at
        attempt.save()
        if environment_changed:
            attempt_score_update(attempt=attempt, is_final=not attempt.is_running, now=now)
            _request_leaderboard_recompute()
        return attempt, False
    try:
        with transaction.atomic():
            attempt = Attempt.objects.create(
                source=Attempt.Source.API,
                external_id=run_id,
                submitted_by=by,
                started_at=started_at or now,
                **fields,
            )
    except IntegrityError:
        # Two requests with the same new run id at once: the other one created it; this one updates it.
        return agent_run_create(
            by=by,
            run_id=run_id,
            environment=environment,
            agent_name=agent_name,
            agent_model=agent_model,
            agent_scaffold=agent_scaffold,
            configuration=configuration,
            time_limit_seconds=time_limit_seconds,
            started_at=started_at,
            now=now,
        )
    return attempt, True


def _positive_duration(seconds: float) -> timedelta:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise ServiceError("The run length must be a positive number of seconds.", field="time_limit_seconds")
    return timedelta(seconds=seconds)


@transaction.atomic
def agent_run_log_score(
    *,
    attempt: Attempt,
    by: User,
    elapsed_seconds: float,
    score: float | None,
    message: str = "",
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> ScoreLogEntry:
    """One score-log entry of a running API run; score None is an invalid (NaN) result. The final score follows."""
    _may_use_api(by)
    now = now or timezone.now()
    attempt = Attempt.objects.select_for_update().select_related("environment").get(pk=attempt.pk)
    _may_write(attempt, by)
    if not attempt.is_running:
        raise ServiceError("The run is finished; its score log is closed.", field="run")
    if isinstance(elapsed_seconds, bool) or not isinstance(elapsed_seconds, int | float):
        raise ServiceError("Elapsed time must be a number of seconds.", field="elapsed_seconds")
    if not math.isfinite(elapsed_seconds) or elapsed_seconds < 0:
        raise ServiceError("Elapsed time can't be negative.", field="elapsed_seconds")
    limit = attempt.time_limit.total_seconds()
    if elapsed_seconds > limit:
        raise ServiceError(
            f"Elapsed time {elapsed_seconds:g} s is beyond the run length {limit:g} s.", field="elapsed_seconds"
        )
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float) or math.isinf(score)):
        raise ServiceError("The score must be a number (or null for an invalid result).", field="score")
    if score is not None and math.isnan(score):
        score = None
    if details is not None and not isinstance(details, dict):
        raise ServiceError("Details must be a JSON object.", field="details")
    entry = ScoreLogEntry.objects.create(
        attempt=attempt,
        scored_at=now,
        elapsed_seconds=float(elapsed_seconds),
        score=float(score) if score is not None else None,
        message=(message or "")[:10_000],
        details=details or {},
    )
    attempt_score_update(attempt=attempt, now=now)
    _request_leaderboard_recompute()
    return entry


@transaction.atomic
def agent_run_finish(*, attempt: Attempt, by: User, now: datetime | None = None) -> Attempt:
    """The harness is done with the run: it ends and its score is final. Finishing twice changes nothing."""
    _may_use_api(by)
    now = now or timezone.now()
    attempt = Attempt.objects.select_for_update().select_related("environment").get(pk=attempt.pk)
    _may_write(attempt, by)
    if not attempt.is_running:
        return attempt
    attempt.status = Attempt.Status.ENDED
    attempt.ended_at = max(now, attempt.started_at)
    attempt.end_reason = Attempt.EndReason.HARNESS
    attempt.save(update_fields=["status", "ended_at", "end_reason"])
    attempt_score_update(attempt=attempt, is_final=True, now=now)
    _request_leaderboard_recompute()
    return attempt
