"""Run imports: a file stored and queued, then read, checked and written all or nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from environments.models import CONFIGURATION_NAME, EnvironmentConfiguration
from graders.imports import formats
from graders.imports.models import RunImport
from graders.imports.services.writing import runs_write
from rebench_site import roles
from rebench_site.errors import NotAllowed, ServiceError
from trials.models import Attempt

log = logging.getLogger(__name__)
SOURCE_OF_KIND = {
    formats.KIND_INSPECT: Attempt.Source.INSPECT,
    formats.KIND_METR_RUNS: Attempt.Source.METR_RUNS,
    formats.KIND_FILE: Attempt.Source.FILE,
}


def _max_bytes() -> int:
    return int(settings.RUN_IMPORT_MAX_BYTES)


def refuse_if_too_large(size: int) -> None:
    """Checked before a byte of the file is stored or read."""
    if size > _max_bytes():
        raise formats.ImportRefused(
            f"the file is {size / 2**20:.1f} MiB; imports take at most {_max_bytes() / 2**20:.0f} MiB.", field="file"
        )


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
