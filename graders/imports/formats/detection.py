"""Format detection, and the file's runs read by the reader of its format."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from environments.models import EnvironmentConfiguration
from graders.imports.formats._shared import (
    KIND_FILE,
    KIND_INSPECT,
    KIND_METR_RUNS,
    ImportRefused,
    Progress,
    RunRecord,
    _json_lines,
)
from graders.imports.formats.inspect_logs import read_inspect
from graders.imports.formats.metr_runs import read_metr_runs
from graders.imports.formats.run_file import read_run_file


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
