"""What every reader shares: the records a file becomes, the refusal, and reading JSON lines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from environments.models import Environment, EnvironmentConfiguration
from rebench_site import bounded_json
from rebench_site.errors import ServiceError

Progress = Callable[[int, int], None]

KIND_INSPECT = "inspect"
KIND_METR_RUNS = "metr_runs"
KIND_FILE = "file"
MAX_ID_LENGTH = 255
MAX_LABEL_LENGTH = 200
PARTICIPANT_KINDS = ("human", "agent")


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
