"""METR's public runs JSONL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from environments.models import EnvironmentConfiguration
from graders.imports.formats._shared import (
    MAX_ID_LENGTH,
    EntryRecord,
    ImportRefused,
    Progress,
    RunRecord,
    _count_lines,
    _json_lines,
    _report,
)
from graders.imports.formats.validation import Environments, check_run, number, text


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
