"""Inspect eval logs: each sample (and epoch) is a run."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from environments.models import Environment, EnvironmentConfiguration
from graders.imports.formats._shared import MAX_ID_LENGTH, EntryRecord, ImportRefused, Progress, RunRecord, _report
from graders.imports.formats.validation import Environments, check_run, number, text

# Inspect rounds working times to the millisecond, so the final score's clock reading may pass the
# rounded working time by that much; anything later than this is a real inconsistency.
INSPECT_CLOCK_SLACK_SECONDS = 1.0


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
        start = timezone.make_aware(start, UTC)
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
