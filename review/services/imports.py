"""Completion imports: a JSONL or CSV file checked line by line, then written in one transaction by a Celery job."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from rebench_site import bounded_json
from rebench_site.errors import ServiceError
from review.models import Completion, ImportJob, LabelValue
from review.services.completions import _check_prompt, completion_check_text

log = logging.getLogger(__name__)


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


def import_job_create(*, created_by: User | None, upload: Any, fmt: str = "", batch: str = "") -> ImportJob:
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
