"""Terminal recordings as asciicast v2: spooled on disk while the terminal runs, kept in Django storage, read back.

How a recording is made, and why in pieces:

- The terminal's output is recorded by its holder (workstation/tools/term_holder.py) as it reads the
  PTY, so output is recorded byte for byte whether or not a browser is attached, and never twice
  when several are.
  On an SSH workstation that spool lives on the workstation and is pulled here (workstation.backends.ssh).
- What only the server knows (input `i`, resizes `r`, markers `m` at connect, disconnect and
  reconnect) is appended by the consumer to a second spool file, buffered and flushed on a timer.
- Both spools are local files with absolute times, appended as the terminal runs: a crash loses at
  most the flush interval. Closed chunks (whole lines up to an offset) are uploaded to storage as
  parts while the attempt runs; when it ends, the parts are merged into the one `.cast` file at the
  session's `recording_name` and the parts and spool are removed. Storage never needs an append,
  so the same code works on FileSystemStorage (MEDIA_ROOT) and S3-compatible storage.
- Readers (replay, download, activity) read the final file, or, while the attempt runs, merge the
  parts with the local spool's tail.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import heapq
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

log = logging.getLogger(__name__)

# Buffered events are written out when this much has piled up, whatever the clock says.
FLUSH_BYTES = 256 * 1024
OUTPUT = "output.jsonl"  # written by the terminal's holder (or pulled from the workstation)
EVENTS = "events.jsonl"  # written by the consumer: i, r, m
HEADER = "header.json"
STREAMS = (OUTPUT, EVENTS)


def recording_name(attempt_id: int, number: int) -> str:
    return f"{settings.TERMINAL_RECORDING_DIR}/attempt-{attempt_id}/terminal-{number}.cast"


def storage() -> Storage:
    return storages[settings.TERMINAL_RECORDING_STORAGE]


def spool_dir(name: str) -> Path:
    """Where the live spool of recording `name` is on this machine."""
    return Path(settings.TERMINAL_RECORDING_SPOOL) / name.removesuffix(".cast")


def parts_prefix(name: str) -> str:
    return f"{name.removesuffix('.cast')}.parts"


def prepare_spool(name: str, *, width: int, height: int, title: str) -> Path:
    """The spool directory, with its header on first use.

    As root the directory is root's (0711): the keystrokes, resizes and markers, the header and
    the upload offsets are nobody else's. The output stream in it is made by the workstation
    backend for the terminal's holder, which runs as the terminal user (never an attempt's).
    """
    root = Path(settings.TERMINAL_RECORDING_SPOOL)
    root.mkdir(parents=True, exist_ok=True)
    directory = spool_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    # Each level above must be traversable by the terminal user, who runs the holder.
    for level in directory.parents:
        if level == root.parent:
            break
        level.chmod(0o711)
    if os.geteuid() == 0:
        if directory.stat().st_uid != 0:  # a spool made by an older version, owned by the shell's user
            os.chown(directory, 0, 0)
        directory.chmod(0o711)
    header = directory / HEADER
    if not header.exists() and not storage().exists(f"{parts_prefix(name)}/{HEADER}"):
        payload = {
            "version": 2,
            "width": width,
            "height": height,
            "timestamp": int(time.time()),
            "title": title,
            "env": {"TERM": "xterm-256color", "SHELL": settings.TERMINAL_SHELL},
        }
        tmp = directory / f".{HEADER}.{os.getpid()}"
        tmp.write_text(json.dumps(payload))
        tmp.replace(header)
    return directory


def has_started(name: str) -> bool:
    """Whether the recording has any events yet (the next connect is then a `reconnect`)."""
    directory = spool_dir(name)
    if any((directory / s).exists() and (directory / s).stat().st_size for s in STREAMS):
        return True
    with contextlib.suppress(FileNotFoundError, NotImplementedError):
        _dirs, files = storage().listdir(parts_prefix(name))
        return any(f != HEADER for f in files)
    return False


class CastRecorder:
    """The consumer's side of a recording: input, resizes and markers, appended to the spool on a timer.

    Nothing here runs per output byte (the holder records output), and keystrokes are only buffered: the
    file is written by the consumer's timer (`flush`), or when the buffer is large, never on the
    keystroke's path.
    """

    def __init__(self, name: str) -> None:
        self.path = spool_dir(name) / EVENTS
        self._buffer: list[str] = []
        self._buffered_bytes = 0
        # Incremental: a UTF-8 character split across two frames is decoded whole, not as two errors.
        self._input_decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def _event(self, code: str, data: str) -> None:
        line = json.dumps([round(time.time(), 6), code, data]) + "\n"
        self._buffer.append(line)
        self._buffered_bytes += len(line)
        if self._buffered_bytes >= FLUSH_BYTES:
            self.flush()

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
        if not self._buffer:
            return
        data = "".join(self._buffer).encode()
        self._buffer.clear()
        self._buffered_bytes = 0
        try:
            # No O_CREAT beyond the spool directory: a recording already finalised stays closed.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except FileNotFoundError:
            log.info("%s: the recording was finalised; %d late bytes dropped", self.path, len(data))
            return
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def close(self) -> None:
        self.flush()


# --- spool → storage ---------------------------------------------------------------------------


@contextlib.contextmanager
def _spool_lock(directory: Path) -> Iterator[None]:
    """One uploader per spool at a time (two tabs of one terminal, a consumer and the end task)."""
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _offsets(directory: Path) -> dict[str, int]:
    try:
        offsets: dict[str, int] = json.loads((directory / "uploaded.json").read_text())
        return offsets
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def upload_closed_chunks(name: str) -> int:
    """Upload what the spool holds past the last upload (whole lines only) as new parts; returns bytes uploaded."""
    directory = spool_dir(name)
    if not directory.is_dir():
        return 0
    store, prefix, total = storage(), parts_prefix(name), 0
    with _spool_lock(directory):
        offsets = _offsets(directory)
        header = directory / HEADER
        if header.exists() and not store.exists(f"{prefix}/{HEADER}"):
            store.save(f"{prefix}/{HEADER}", ContentFile(header.read_bytes()))
        for stream in STREAMS:
            path = directory / stream
            start = offsets.get(stream, 0)
            if not path.exists() or path.stat().st_size <= start:
                continue
            with path.open("rb") as f:
                f.seek(start)
                chunk = f.read()
            chunk = chunk[: chunk.rfind(b"\n") + 1]  # a line being written now goes in the next part
            if not chunk:
                continue
            part = f"{prefix}/{stream.removesuffix('.jsonl')}-{start:014d}.jsonl"
            if not store.exists(part):
                store.save(part, ContentFile(chunk))
            offsets[stream] = start + len(chunk)
            total += len(chunk)
        tmp = directory / ".uploaded.json.tmp"
        tmp.write_text(json.dumps(offsets))
        tmp.replace(directory / "uploaded.json")
    return total


def finalize(name: str) -> bool:
    """Merge everything recorded into the one `.cast` at `name`; remove parts and spool. Idempotent."""
    store = storage()
    upload_closed_chunks(name)
    lines = list(_compose(name, include_spool=False))
    if not lines:
        return store.exists(name)
    if store.exists(name):
        store.delete(name)  # a finalisation interrupted after the save: the parts are the truth
    store.save(name, ContentFile("".join(lines).encode()))
    prefix = parts_prefix(name)
    with contextlib.suppress(FileNotFoundError, NotImplementedError):
        for part in store.listdir(prefix)[1]:
            store.delete(f"{prefix}/{part}")
    shutil.rmtree(spool_dir(name), ignore_errors=True)
    return True


# --- reading -----------------------------------------------------------------------------------


def _parse(lines: Iterable[bytes | str]) -> Iterator[list[Any]]:
    """Events from JSON lines; a torn line (a crash mid-write) is skipped, not fatal."""
    for line in lines:
        try:
            event = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(event, list) and len(event) == 3 and isinstance(event[0], int | float):
            yield event


def _stream_events(name: str, stream: str, *, include_spool: bool) -> Iterator[list[Any]]:
    """One stream's events in time order: its parts in storage, then the spool past the last upload."""
    store, prefix = storage(), parts_prefix(name)
    kind = stream.removesuffix(".jsonl")
    try:
        parts = sorted(p for p in store.listdir(prefix)[1] if p.startswith(f"{kind}-"))
    except (FileNotFoundError, NotImplementedError):
        parts = []
    for part in parts:
        with store.open(f"{prefix}/{part}", "rb") as f:
            yield from _parse(f.read().splitlines())
    if include_spool:
        path = spool_dir(name) / stream
        start = _offsets(spool_dir(name)).get(stream, 0)
        with contextlib.suppress(FileNotFoundError), path.open("rb") as f:
            f.seek(start)
            yield from _parse(f.read().splitlines())


def _header(name: str) -> dict[str, Any] | None:
    store = storage()
    header: dict[str, Any]
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        header = json.loads((spool_dir(name) / HEADER).read_text())
        return header
    if store.exists(f"{parts_prefix(name)}/{HEADER}"):
        with store.open(f"{parts_prefix(name)}/{HEADER}", "rb") as f:
            header = json.loads(f.read())
            return header
    return None


def _compose(name: str, *, include_spool: bool = True) -> Iterator[str]:
    """The asciicast v2 lines of an unfinished recording: header, then both streams merged by time."""
    header = _header(name)
    if header is None:
        return
    base = float(header.get("timestamp", 0))
    yield json.dumps(header) + "\n"
    streams = [_stream_events(name, s, include_spool=include_spool) for s in STREAMS]
    last = 0.0
    for t, code, data in heapq.merge(*streams, key=lambda e: e[0]):
        # Relative to the header, never backwards (two clocks: a workstation's and this server's).
        last = max(last, round(float(t) - base, 6))
        yield json.dumps([last, code, data]) + "\n"


def recording_exists(name: str) -> bool:
    return storage().exists(name) or _header(name) is not None


def cast_lines(name: str) -> Iterator[str]:
    """The recording as asciicast v2 lines, finished or not."""
    store = storage()
    if store.exists(name):
        with store.open(name, "rb") as f:
            for line in f:
                yield line.decode("utf-8", "replace")
        return
    yield from _compose(name)


def read_cast(name: str) -> tuple[dict[str, Any], list[list[Any]]]:
    """Header and events of recording `name`; a torn line is skipped, not fatal."""
    lines = cast_lines(name)
    first = next(lines, None)
    if first is None:
        raise FileNotFoundError(name)
    return json.loads(first), list(_parse(lines))


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


def activity_timeline(names: list[str], *, start: datetime, end: datetime) -> Activity:
    """Minute by minute from `start` to `end`: active when the expert typed in any terminal."""
    typed: set[int] = set()
    origin = start.timestamp()
    for name in names:
        try:
            header, events = read_cast(name)
        except FileNotFoundError:
            continue
        base = float(header.get("timestamp", 0))
        for t, code, _data in events:
            if code == "i":
                typed.add(int((base + float(t) - origin) // 60))
    total = max(0, int((end - start).total_seconds() // 60) + 1)
    total = min(total, 7 * 24 * 60)  # a runaway range must not build a week of cells per request
    start_utc = start.astimezone(UTC)
    return Activity([ActivityMinute(start_utc + timedelta(minutes=i), i in typed) for i in range(total)])
