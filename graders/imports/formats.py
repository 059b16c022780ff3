"""Readers of run files: each turns a file into checked RunRecords, or refuses it naming the line and field."""

from __future__ import annotations

import csv
import math
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from environments.models import Environment, EnvironmentConfiguration
from environments.services import environment_configuration_for
from rebench_site import bounded_json
from rebench_site.errors import ServiceError

Progress = Callable[[int, int], None]

KIND_INSPECT = "inspect"
KIND_METR_RUNS = "metr_runs"
KIND_FILE = "file"
MAX_ID_LENGTH = 255
MAX_LABEL_LENGTH = 200
PARTICIPANT_KINDS = ("human", "agent")
# Inspect rounds working times to the millisecond, so the final score's clock reading may pass the
# rounded working time by that much; anything later than this is a real inconsistency.
INSPECT_CLOCK_SLACK_SECONDS = 1.0


class ImportRefused(ServiceError):
    """A bad file: `line` is the 1-based line (the sample's number in an Inspect log), `field` the input at fault."""

    def __init__(self, message: str, *, line: int | None = None, field: str = "file") -> None:
        where = f"line {line}, " if line is not None else ""
        super().__init__(f"{where}{field}: {message}", field=field)
        self.line = line
        self.reason = message


@dataclass
class EntryRecord:
    elapsed_seconds: float
    score: float | None  # None: an invalid (NaN) result, kept in the log as RE-Bench keeps it
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    scored_at: datetime | None = None


@dataclass
class RunRecord:
    line: int
    external_id: str
    environment: Environment
    participant_kind: str
    time_limit_seconds: float
    participant_label: str = ""
    agent_name: str = ""
    agent_model: str = ""
    agent_scaffold: str = ""
    started_at: datetime | None = None
    entries: list[EntryRecord] = field(default_factory=list)
    # The scale it was scored at: the row's `configuration`, else the import's (METR runs: `full`).
    configuration: EnvironmentConfiguration | None = None


# --- shared checks ---------------------------------------------------------------------------------


class Environments:
    """Environment rows by slug, looked up once per file; unknown slugs are refused with their line."""

    def __init__(self) -> None:
        self._by_slug: dict[str, Environment] = {e.slug: e for e in Environment.objects.all()}
        self._configurations: dict[tuple[int, str], EnvironmentConfiguration] = {}

    def configuration(self, environment: Environment, name: Any, *, line: int) -> EnvironmentConfiguration:
        """The latest version of configuration `name` of `environment`, looked up once per file."""
        if not isinstance(name, str) or not name.strip():
            raise ImportRefused(
                "is required: small, full or a custom configuration's name.", line=line, field="configuration"
            )
        key = (environment.pk, name.strip())
        if key not in self._configurations:
            try:
                self._configurations[key] = environment_configuration_for(environment=environment, name=key[1])
            except ServiceError as exc:
                raise ImportRefused(exc.message.rstrip("."), line=line, field="configuration") from None
        return self._configurations[key]

    def find(self, *candidates: Any) -> Environment | None:
        for candidate in candidates:
            if isinstance(candidate, str) and candidate.strip() in self._by_slug:
                return self._by_slug[candidate.strip()]
        return None

    def get(self, slug: Any, *, line: int, field: str) -> Environment:
        found = self.find(slug)
        if found is None:
            raise ImportRefused(f"unknown environment {slug!r}.", line=line, field=field)
        return found


def number(value: Any, *, line: int, field: str, allow_missing: bool = False) -> float | None:
    """A finite float; None for null/NaN/"" when `allow_missing` (an invalid score), else refused."""
    if value is None or value == "":
        if allow_missing:
            return None
        raise ImportRefused("is required.", line=line, field=field)
    if isinstance(value, bool):
        raise ImportRefused(f"{value!r} is not a number.", line=line, field=field)
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise ImportRefused(f"{value!r} is not a number.", line=line, field=field) from None
    else:
        raise ImportRefused(f"{value!r} is not a number.", line=line, field=field)
    if math.isnan(result):
        if allow_missing:
            return None
        raise ImportRefused("is NaN.", line=line, field=field)
    if math.isinf(result):
        raise ImportRefused(f"{value!r} is not a finite number.", line=line, field=field)
    return result


def text(value: Any, *, line: int, field: str, required: bool = False, max_length: int = MAX_LABEL_LENGTH) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str | int):
        raise ImportRefused(f"{value!r} is not text.", line=line, field=field)
    value = str(value).strip()
    if required and not value:
        raise ImportRefused("is required.", line=line, field=field)
    if len(value) > max_length:
        raise ImportRefused(f"is longer than {max_length} characters.", line=line, field=field)
    return value


def when(value: Any, *, line: int, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise ImportRefused(f"{value!r} is not an ISO 8601 date and time.", line=line, field=field)
    if timezone.is_naive(parsed):
        raise ImportRefused("give the time zone too (e.g. +00:00).", line=line, field=field)
    return parsed


def check_run(record: RunRecord, seen: dict[str, int]) -> RunRecord:
    """What every format must satisfy: one row per run id, a positive run length, entries inside it."""
    if record.external_id in seen:
        raise ImportRefused(
            f"run id {record.external_id!r} appears twice in this file (first on line {seen[record.external_id]}).",
            line=record.line,
            field="run_id",
        )
    seen[record.external_id] = record.line
    if record.time_limit_seconds <= 0:
        raise ImportRefused("the run length must be positive.", line=record.line, field="time_limit")
    for entry in record.entries:
        if entry.elapsed_seconds < 0:
            raise ImportRefused(
                f"elapsed time {entry.elapsed_seconds:g} s is negative.", line=record.line, field="elapsed_seconds"
            )
        if entry.elapsed_seconds > record.time_limit_seconds:
            raise ImportRefused(
                f"elapsed time {entry.elapsed_seconds:g} s is beyond the run length {record.time_limit_seconds:g} s.",
                line=record.line,
                field="elapsed_seconds",
            )
    record.entries.sort(key=lambda e: e.elapsed_seconds)
    return record


BOM = b"\xef\xbb\xbf"


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as handle:
        for number_, raw in enumerate(handle, start=1):
            if number_ == 1:
                raw = raw.removeprefix(BOM)  # editors on Windows start UTF-8 files with one
            if not raw.strip():
                continue
            try:
                row = bounded_json.loads(raw)
            except ValueError as exc:  # not UTF-8, not JSON, or nested too deep
                raise ImportRefused(f"not valid JSON ({exc}).", line=number_, field="line") from None
            if not isinstance(row, dict):
                raise ImportRefused("each line must be a JSON object.", line=number_, field="line")
            yield number_, row


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for raw in handle if raw.strip())


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


# --- format detection --------------------------------------------------------------------------------


def detect_kind(path: Path, original_name: str) -> str:
    """Inspect logs by extension (.eval, .json); .jsonl is METR's runs format when its first row looks like it."""
    name = original_name.lower()
    if name.endswith((".eval", ".json")):
        return KIND_INSPECT
    if name.endswith(".csv"):
        return KIND_FILE
    if name.endswith(".jsonl"):
        for _, row in _json_lines(path):
            return KIND_METR_RUNS if {"task_id", "alias"} <= row.keys() or "score_cont" in row else KIND_FILE
        raise ImportRefused("the file has no runs in it.")
    raise ImportRefused(f"can't tell the format of {original_name!r}: name it .eval, .json, .jsonl or .csv.")


def records(
    path: Path, kind: str, *, configuration: str = EnvironmentConfiguration.FULL, progress: Progress | None = None
) -> Iterator[RunRecord]:
    """The file's runs, checked, one at a time: a file of any length is read in bounded memory.

    `configuration` is the scale of runs whose row doesn't name one. A refusal comes as the
    generator reaches the bad line; callers that write do so in one transaction (services).
    """
    readers: dict[str, Callable[..., Iterator[RunRecord]]] = {
        KIND_INSPECT: read_inspect,
        KIND_METR_RUNS: read_metr_runs,
        KIND_FILE: read_run_file,
    }
    if kind not in readers:
        raise ImportRefused(f"unknown import format {kind!r}.", field="kind")
    empty = True
    for record in readers[kind](path, configuration=configuration, progress=progress):
        empty = False
        yield record
    if empty:
        raise ImportRefused("the file has no runs in it.")


def read(
    path: Path, kind: str, *, configuration: str = EnvironmentConfiguration.FULL, progress: Progress | None = None
) -> list[RunRecord]:
    """Every run of a file at once (small files, tests); imports stream with `records`."""
    return list(records(path, kind, configuration=configuration, progress=progress))


# --- METR's public runs JSONL ------------------------------------------------------------------------


def read_metr_runs(
    path: Path, *, configuration: str = EnvironmentConfiguration.FULL, progress: Progress | None = None
) -> Iterator[RunRecord]:
    """One run per line. `score_cont` is the normalised score (0 = starting solution, 1 = reference).

    METR's runs are RE-Bench's tasks, so they are `full` by definition: `score_cont` is turned back
    into a raw score with the full configuration's constants (raw = start + score_cont × (reference
    − start)), and normalising it again gives `score_cont` back exactly (to rounding).
    The run's length is `time_limit` (seconds); a human row without one uses `human_minutes`.
    The score counts at the end of the run, or at `human_minutes` for a human who took less.
    """
    if configuration != EnvironmentConfiguration.FULL:
        raise ImportRefused(
            f"METR runs are RE-Bench's tasks, scored at full scale: import them as full, not {configuration!r}.",
            field="configuration",
        )
    environments = Environments()
    total = _count_lines(path)
    seen: dict[str, int] = {}
    for done, (line, row) in enumerate(_json_lines(path), start=1):
        run_id = text(row.get("run_id"), line=line, field="run_id", required=True, max_length=MAX_ID_LENGTH)
        family, task_id = row.get("task_family"), row.get("task_id")
        task_prefix = task_id.split("/")[0] if isinstance(task_id, str) else None
        environment = environments.find(family, task_id, task_prefix)
        if environment is None:
            shown = family if family not in (None, "") else task_id
            raise ImportRefused(f"unknown environment {shown!r}.", line=line, field="task_family")
        alias = text(row.get("alias"), line=line, field="alias")
        is_human = alias.lower() == "human"
        human_minutes = number(row.get("human_minutes"), line=line, field="human_minutes", allow_missing=True)
        limit = number(row.get("time_limit"), line=line, field="time_limit", allow_missing=True)
        if limit is None and is_human and human_minutes is not None:
            limit = human_minutes * 60
        if limit is None:
            raise ImportRefused("is required (seconds) for an agent run.", line=line, field="time_limit")
        full = environments.configuration(environment, EnvironmentConfiguration.FULL, line=line)
        normalised = number(row.get("score_cont"), line=line, field="score_cont", allow_missing=True)
        raw = None
        if normalised is not None:
            # Back to the full configuration's raw scale, so that our normalisation gives the same number back.
            raw = full.starting_score + normalised * (full.reference_score - full.starting_score)
        elapsed = limit
        if is_human and human_minutes is not None:
            elapsed = human_minutes * 60
            if elapsed > limit:
                raise ImportRefused(
                    f"{human_minutes:g} minutes is beyond the run length {limit:g} s.", line=line, field="human_minutes"
                )
        record = RunRecord(
            line=line,
            external_id=run_id,
            environment=environment,
            participant_kind="human" if is_human else "agent",
            time_limit_seconds=limit,
            participant_label=text(row.get("human_id") or alias, line=line, field="alias") if is_human else alias,
            agent_name="" if is_human else alias,
            agent_model="" if is_human else text(row.get("model"), line=line, field="model"),
            agent_scaffold="" if is_human else text(row.get("scaffold"), line=line, field="scaffold"),
            entries=[
                EntryRecord(
                    elapsed_seconds=elapsed,
                    score=raw,
                    message="imported from METR runs (score_cont)",
                    details={"score_cont": normalised, "task_id": task_id, "task_source": row.get("task_source")},
                )
            ],
            configuration=full,
        )
        yield check_run(record, seen)
        _report(progress, done, total)


# --- our own JSONL / CSV -----------------------------------------------------------------------------

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


# --- Inspect eval logs -------------------------------------------------------------------------------


def _check_inspect_container(path: Path) -> None:
    """An .eval log is a zip: a truncated or corrupt one is refused before inspect_ai reads any of it."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as archive:
                _check_zip_sizes(archive)
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ImportRefused(f"the .eval archive is truncated or corrupt ({exc}).") from None
        if bad is not None:
            raise ImportRefused(f"the .eval archive is corrupt: {bad} fails its checksum.")
    elif path.suffix.lower() == ".eval":
        raise ImportRefused("an .eval log must be a zip archive; this one is not (truncated?).")


def _check_zip_sizes(archive: zipfile.ZipFile) -> None:
    """Refuse a zip bomb from its directory, before anything is inflated: inspect_ai reads each member
    whole, so a member's size is memory. Python's zipfile stops a member at its declared size, so the
    declared sizes are what a read can cost."""
    total = 0
    for member in archive.infolist():
        total += member.file_size
        if member.file_size > settings.RUN_IMPORT_MAX_MEMBER_BYTES:
            raise ImportRefused(
                f"the .eval archive's {member.filename} unpacks to {member.file_size:,} bytes; "
                f"the limit is {settings.RUN_IMPORT_MAX_MEMBER_BYTES:,}."
            )
        # Tiny members may compress as well as they like; a large one that shrank past the ratio is a bomb.
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > 1024 * 1024 and ratio > settings.RUN_IMPORT_MAX_ZIP_RATIO:
            raise ImportRefused(
                f"the .eval archive's {member.filename} unpacks {ratio:,.0f} times its packed size; "
                f"a log compresses at most {settings.RUN_IMPORT_MAX_ZIP_RATIO} times."
            )
    if total > settings.RUN_IMPORT_MAX_UNPACKED_BYTES:
        raise ImportRefused(
            f"the .eval archive unpacks to {total:,} bytes; the limit is {settings.RUN_IMPORT_MAX_UNPACKED_BYTES:,}."
        )


def _score_value(value: Any, *, line: int, field: str) -> float | None:
    """Inspect's Score.value as a raw score; a dict of metrics needs a numeric `score` in it."""
    if isinstance(value, dict):
        if "score" not in value:
            raise ImportRefused(f"{value!r} has no numeric 'score'.", line=line, field=field)
        value = value["score"]
    return number(value, line=line, field=field, allow_missing=True)


def _inspect_environment(sample: Any, log: Any, environments: Environments, line: int) -> Environment:
    task = log.eval.task or ""
    candidates = [
        (sample.metadata or {}).get("environment"),
        (log.eval.metadata or {}).get("environment"),
        (log.eval.task_args or {}).get("environment"),
        task,
        task.rsplit("/", 1)[-1],
    ]
    found = environments.find(*candidates)
    if found is None:
        shown = next((c for c in candidates if c), task)
        raise ImportRefused(f"unknown environment {shown!r}.", line=line, field="environment")
    return found


def _human_scorings(store: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The human agent's `task score` results (HumanAgentState's `scorings` in the sample store)."""
    for key, value in (store or {}).items():
        if key.endswith(":scorings") and isinstance(value, list):
            return value
    return None


def _inspect_record(sample: Any, log: Any, number_: int, environments: Environments, configuration: str) -> RunRecord:
    environment = _inspect_environment(sample, log, environments, number_)
    config = log.eval.config
    working = float(sample.working_time or 0.0)
    # The run's length is its working-time budget where the eval set one, else the time it worked.
    limit = float(config.working_limit) if getattr(config, "working_limit", None) else working
    started = _sample_start(sample, log)
    entries: list[EntryRecord] = []
    scorings = _human_scorings(sample.store)
    is_human = scorings is not None or any(k.startswith("HumanAgentState:") for k in (sample.store or {}))
    if scorings is not None:
        for index, item in enumerate(scorings):
            scores = (item or {}).get("scores") or []
            value = scores[0].get("value") if scores and isinstance(scores[0], dict) else None
            entries.append(
                EntryRecord(
                    elapsed_seconds=number(item.get("time"), line=number_, field=f"scorings[{index}].time") or 0.0,
                    score=_score_value(value, line=number_, field=f"scorings[{index}].score"),
                    message=str((scores[0].get("explanation") if scores else "") or "")[:10_000],
                    details={"source": "inspect human agent"},
                )
            )
    else:
        for event in sample.events or []:
            if getattr(event, "event", None) == "score" and getattr(event, "intermediate", False):
                elapsed = float(event.working_start or 0.0)
                entries.append(
                    EntryRecord(
                        elapsed_seconds=elapsed,
                        score=_score_value(event.score.value, line=number_, field="score"),
                        message=str(event.score.explanation or "")[:10_000],
                        details={"source": "inspect intermediate score"},
                    )
                )
    for name, final in (sample.scores or {}).items():
        entries.append(
            EntryRecord(
                elapsed_seconds=min(working, limit),
                score=_score_value(final.value, line=number_, field=f"scores.{name}"),
                message=str(final.explanation or "")[:10_000],
                details={"source": "inspect final score", "scorer": name},
            )
        )
        break  # RE-Bench tasks have one scorer; a second would be a second opinion on the same moment
    for entry in entries:
        if limit < entry.elapsed_seconds <= limit + INSPECT_CLOCK_SLACK_SECONDS:
            entry.elapsed_seconds = limit
    metadata = {**(log.eval.metadata or {}), **(sample.metadata or {})}
    solver = log.eval.solver or (log.plan.steps[0].solver if log.plan and log.plan.steps else "")
    uid = sample.uuid or f"{log.eval.eval_id}:{sample.id}:{sample.epoch}"
    return RunRecord(
        line=number_,
        external_id=text(uid, line=number_, field="uuid", required=True, max_length=MAX_ID_LENGTH),
        environment=environment,
        configuration=environments.configuration(
            environment, metadata.get("configuration") or configuration, line=number_
        ),
        participant_kind="human" if is_human else "agent",
        time_limit_seconds=limit,
        participant_label=text(
            metadata.get("participant") or ("human" if is_human else ""), line=number_, field="participant"
        ),
        agent_name="" if is_human else text(metadata.get("agent") or solver, line=number_, field="solver"),
        agent_model="" if is_human else text(log.eval.model, line=number_, field="model"),
        agent_scaffold="" if is_human else text(solver, line=number_, field="solver"),
        started_at=started,
        entries=entries,
    )


def _sample_start(sample: Any, log: Any) -> datetime | None:
    start = getattr(sample, "started_at", None) or log.eval.created
    if isinstance(start, str):
        start = parse_datetime(start)
    if isinstance(start, datetime) and timezone.is_naive(start):
        start = timezone.make_aware(start, timezone.utc)
    return start if isinstance(start, datetime) else None


def read_inspect(
    path: Path, *, configuration: str = EnvironmentConfiguration.FULL, progress: Progress | None = None
) -> Iterator[RunRecord]:
    """Each sample (and epoch) of an Inspect eval log is a run, read with inspect_ai's own reader.

    The configuration is the sample's or the eval's metadata `configuration`, else the import's."""
    from inspect_ai.log import read_eval_log  # heavy: only imports need it

    _check_inspect_container(path)
    try:
        log = read_eval_log(str(path))
    except Exception as exc:  # inspect_ai raises many kinds for a bad file; all mean "not a log we can read"
        raise ImportRefused(f"not a readable Inspect eval log ({type(exc).__name__}: {exc}).") from None
    samples = log.samples or []
    environments = Environments()
    seen: dict[str, int] = {}
    for number_, sample in enumerate(samples, start=1):
        yield check_run(_inspect_record(sample, log, number_, environments, configuration), seen)
        _report(progress, number_, len(samples))
