"""Terminal recordings as asciicast v2: written while the terminal runs, read back for replay and timelines."""

from __future__ import annotations

import codecs
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings

# Buffered events are written out when this much has piled up, whatever the clock says.
FLUSH_BYTES = 256 * 1024


def recording_name(attempt_id: int, number: int) -> str:
    return f"{settings.TERMINAL_RECORDING_DIR}/attempt-{attempt_id}/terminal-{number}.cast"


def recording_path(name: str) -> Path:
    return Path(settings.MEDIA_ROOT) / name


class CastRecorder:
    """Appends events to one .cast file; several connections over days share one timeline.

    Times are seconds since the header's timestamp, so a reconnect or a server restart appends
    to the same recording instead of starting a new one.
    """

    def __init__(self, path: Path, *, width: int, height: int, title: str, flush_seconds: float) -> None:
        self.path = path
        self.flush_seconds = flush_seconds
        self._buffer: list[str] = []
        self._buffered_bytes = 0
        self._last_flush = time.monotonic()
        # Incremental: a UTF-8 character split across two reads is decoded whole, not as two errors.
        self._output_decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._input_decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.resumed = path.exists() and path.stat().st_size > 0
        if self.resumed:
            self.started = read_header(path).get("timestamp", time.time())
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.started = time.time()
            header = {
                "version": 2,
                "width": width,
                "height": height,
                "timestamp": int(self.started),
                "title": title,
                "env": {"TERM": "xterm-256color", "SHELL": settings.TERMINAL_SHELL},
            }
            self.started = int(self.started)
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(header) + "\n")

    def _event(self, code: str, data: str) -> None:
        line = json.dumps([round(time.time() - self.started, 6), code, data]) + "\n"
        self._buffer.append(line)
        self._buffered_bytes += len(line)
        if self._buffered_bytes >= FLUSH_BYTES or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def output(self, data: bytes) -> None:
        text = self._output_decoder.decode(data)
        if text:
            self._event("o", text)

    def input(self, data: bytes) -> None:
        text = self._input_decoder.decode(data)
        if text:
            self._event("i", text)

    def resize(self, cols: int, rows: int) -> None:
        self._event("r", f"{cols}x{rows}")

    def marker(self, label: str) -> None:
        self._event("m", label)
        self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write("".join(self._buffer))
        self._buffer.clear()
        self._buffered_bytes = 0

    def close(self) -> None:
        self.flush()


def read_header(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        return json.loads(f.readline())


def read_cast(path: Path) -> tuple[dict[str, Any], list[list[Any]]]:
    """Header and events; a torn last line (a crash mid-write) is skipped, not fatal."""
    events = []
    with path.open(encoding="utf-8") as f:
        header = json.loads(f.readline())
        for line in f:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, list) and len(event) == 3:
                events.append(event)
    return header, events


@dataclass(frozen=True)
class ActivityMinute:
    at: datetime
    active: bool


@dataclass(frozen=True)
class Activity:
    minutes: list[ActivityMinute]

    @property
    def active_minutes(self) -> int:
        return sum(1 for m in self.minutes if m.active)

    @property
    def idle_minutes(self) -> int:
        return len(self.minutes) - self.active_minutes


def activity_timeline(paths: list[Path], *, start: datetime, end: datetime) -> Activity:
    """Minute by minute from `start` to `end`: active when the expert typed in any terminal."""
    typed: set[int] = set()
    origin = start.timestamp()
    for path in paths:
        if not path.exists():
            continue
        header, events = read_cast(path)
        base = float(header.get("timestamp", 0))
        for t, code, _data in events:
            if code == "i":
                typed.add(int((base + float(t) - origin) // 60))
    total = max(0, int((end - start).total_seconds() // 60) + 1)
    total = min(total, 7 * 24 * 60)  # a runaway range must not build a week of cells per request
    start_utc = start.astimezone(UTC)
    return Activity([ActivityMinute(start_utc + timedelta(minutes=i), i in typed) for i in range(total)])
