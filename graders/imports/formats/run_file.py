"""Our own JSONL / CSV (docs/run-import-format.md)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from environments.models import EnvironmentConfiguration
from graders.imports.formats._shared import (
    BOM,
    MAX_ID_LENGTH,
    PARTICIPANT_KINDS,
    EntryRecord,
    ImportRefused,
    Progress,
    RunRecord,
    _count_lines,
    _json_lines,
    _report,
)
from graders.imports.formats.validation import Environments, check_run, number, text, when
from rebench_site import bounded_json

OWN_FIELDS = (
    "run_id",
    "environment",
    "participant_kind",
    "participant",
    "agent_name",
    "agent_model",
    "agent_scaffold",
    "time_limit_seconds",
    "started_at",
    "score_log",
    "elapsed_seconds",
    "score",
    "message",
    "configuration",
)


def _own_entries(row: dict[str, Any], line: int) -> list[EntryRecord]:
    log = row.get("score_log")
    if isinstance(log, str) and log.strip():
        try:
            log = bounded_json.loads(log)
        except ValueError as exc:
            raise ImportRefused(f"not valid JSON ({exc}).", line=line, field="score_log") from None
    entries: list[EntryRecord] = []
    if log not in (None, ""):
        if not isinstance(log, list):
            raise ImportRefused("must be a list of {elapsed_seconds, score, message}.", line=line, field="score_log")
        for index, item in enumerate(log):
            where = f"score_log[{index}]"
            if not isinstance(item, dict):
                raise ImportRefused("must be an object.", line=line, field=where)
            entries.append(
                EntryRecord(
                    elapsed_seconds=number(item.get("elapsed_seconds"), line=line, field=f"{where}.elapsed_seconds")
                    or 0.0,
                    score=number(item.get("score"), line=line, field=f"{where}.score", allow_missing=True),
                    message=text(item.get("message"), line=line, field=f"{where}.message", max_length=10_000),
                )
            )
    if row.get("elapsed_seconds") not in (None, "") or row.get("score") not in (None, ""):
        entries.append(
            EntryRecord(
                elapsed_seconds=number(row.get("elapsed_seconds"), line=line, field="elapsed_seconds") or 0.0,
                score=number(row.get("score"), line=line, field="score", allow_missing=True),
                message=text(row.get("message"), line=line, field="message", max_length=10_000),
            )
        )
    return entries


def _own_record(row: dict[str, Any], line: int, environments: Environments, configuration: str) -> RunRecord:
    unknown = sorted(set(row) - set(OWN_FIELDS) - {None})
    if unknown:
        raise ImportRefused(f"unknown column {unknown[0]!r}.", line=line, field=str(unknown[0]))
    kind = text(row.get("participant_kind") or "agent", line=line, field="participant_kind")
    if kind not in PARTICIPANT_KINDS:
        raise ImportRefused(f"{kind!r} is not one of human, agent.", line=line, field="participant_kind")
    limit = number(row.get("time_limit_seconds"), line=line, field="time_limit_seconds")
    assert limit is not None  # required: number() refused a missing one
    if limit <= 0:
        raise ImportRefused("the run length must be positive.", line=line, field="time_limit_seconds")
    label = text(row.get("participant"), line=line, field="participant")
    agent_name = text(row.get("agent_name"), line=line, field="agent_name")
    if kind == "agent" and not agent_name:
        agent_name = label
    environment = environments.get(row.get("environment"), line=line, field="environment")
    return RunRecord(
        line=line,
        external_id=text(row.get("run_id"), line=line, field="run_id", required=True, max_length=MAX_ID_LENGTH),
        environment=environment,
        configuration=environments.configuration(environment, row.get("configuration") or configuration, line=line),
        participant_kind=kind,
        time_limit_seconds=limit,
        participant_label=label,
        agent_name=agent_name if kind == "agent" else "",
        agent_model=text(row.get("agent_model"), line=line, field="agent_model") if kind == "agent" else "",
        agent_scaffold=text(row.get("agent_scaffold"), line=line, field="agent_scaffold") if kind == "agent" else "",
        started_at=when(row.get("started_at"), line=line, field="started_at"),
        entries=_own_entries(row, line),
    )


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows as they are read (the file is never held whole); a BOM and CRLF line ends are fine."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            if not reader.fieldnames or "run_id" not in reader.fieldnames:
                raise ImportRefused("the first line must name the columns, run_id among them.", line=1, field="run_id")
            for row in reader:
                if None in row:  # more cells than columns
                    raise ImportRefused("this row has more cells than the header has columns.", line=reader.line_num)
                if None in row.values():  # fewer: a row cut short, not a run with empty cells
                    raise ImportRefused("this row has fewer cells than the header has columns.", line=reader.line_num)
                yield reader.line_num, row
        except UnicodeDecodeError as exc:
            raise ImportRefused(f"the file is not UTF-8 text ({exc}).", line=reader.line_num + 1) from None


def read_run_file(
    path: Path, *, configuration: str = EnvironmentConfiguration.FULL, progress: Progress | None = None
) -> Iterator[RunRecord]:
    """Our own format (docs/run-import-format.md): JSONL or CSV, one row per run."""
    environments = Environments()
    is_csv = path.suffix.lower() == ".csv" or _looks_like_csv(path)
    rows: Iterable[tuple[int, dict[str, Any]]] = _csv_rows(path) if is_csv else _json_lines(path)
    total = _count_lines(path) - (1 if is_csv else 0)
    seen: dict[str, int] = {}
    for done, (line, row) in enumerate(rows, start=1):
        yield check_run(_own_record(row, line, environments, configuration), seen)
        _report(progress, done, total)


def _looks_like_csv(path: Path) -> bool:
    with path.open("rb") as handle:
        return not handle.read(64).removeprefix(BOM).lstrip().startswith(b"{")
