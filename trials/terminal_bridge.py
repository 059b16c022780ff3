"""The byte path between one browser socket and one shell: frames, flow control, pacing, early input.

Plain asyncio: no Channels, no database. The consumer (trials/consumers.py) hands it the socket's
binary frames and runs its pump while a shell is open; the bridge sends through the callables it
was given, so it runs as well on a real shell in a test as behind the WebSocket.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import Protocol

from workstation.backends import Shell

log = logging.getLogger(__name__)

# Frame types: the first byte of every binary frame.
INPUT = 0  # browser → server: keystrokes / paste
OUTPUT = 1  # server → browser: terminal output
RESIZE = 2  # browser → server: ">HH" columns, rows
ACK = 3  # browser → server: ">I" bytes xterm.js has written since the last ack

# A hidden tab can report 0×0 and a broken client anything; below this no shell is usable.
MIN_COLS, MAX_COLS = 20, 1000
MIN_ROWS, MAX_ROWS = 5, 500


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def clamp_size(cols: int, rows: int) -> tuple[int, int]:
    return min(max(cols, MIN_COLS), MAX_COLS), min(max(rows, MIN_ROWS), MAX_ROWS)


class Recorder(Protocol):
    """What the bridge records itself (trials.recording.CastRecorder): output is recorded by the terminal's holder."""

    def input(self, data: bytes) -> None: ...

    def resize(self, cols: int, rows: int) -> None: ...

    def marker(self, label: str) -> None: ...


class TerminalBridge:
    """One browser socket's frames to one shell, and the shell's output back, with flow control.

    `send_bytes` sends one binary frame to the browser; `refuse` tells the browser (and the log) why
    a frame was refused. `shell` is the open shell, None while there is none (keys typed then wait
    in `early_input`); `recorder`, once set, gets keystrokes, resizes and markers. `log`, `attempt_id`
    and `number` only name the terminal in log lines.
    """

    def __init__(
        self,
        *,
        send_bytes: Callable[[bytes], Awaitable[None]],
        refuse: Callable[[str], Awaitable[None]],
        readonly: bool,
        high_water: int,
        low_water: int,
        pace_frames: int,
        pace_interval_ms: float,
        max_input_bytes: int,
        cols: int = 80,
        rows: int = 24,
        recorder: Recorder | None = None,
        log: logging.Logger = log,
        attempt_id: int = 0,
        number: int = 0,
    ) -> None:
        self.send_bytes = send_bytes
        self.refuse = refuse
        self.readonly = readonly
        self.high_water = high_water
        self.low_water = low_water
        self.pace_frames = pace_frames
        self.pace_interval_ms = pace_interval_ms
        self.max_input_bytes = max_input_bytes
        self.cols, self.rows = cols, rows
        self.recorder = recorder
        self.log = log
        self.attempt_id = attempt_id
        self.number = number
        self.shell: Shell | None = None
        self.closing = False
        self.sent = 0
        self.unacked = 0
        # Input reached the shell since the last output frame: that frame is its answer, never paced.
        self.typed = False
        self.pacing: asyncio.Future[None] | None = None  # the pump's pacing wait, which a keystroke ends
        # Keystrokes typed before the shell is open (the page is fast, a shell takes a moment):
        # kept, up to one input frame's worth, and written once it opens.
        self.early_input: list[bytes] = []
        self.window = asyncio.Event()
        self.window.set()

    def stop(self) -> None:
        """The browser has gone: the pump ends, even one waiting for an ack."""
        self.closing = True
        self.window.set()

    def marker(self, label: str) -> None:
        if self.recorder is not None:
            self.recorder.marker(label)

    # --- shell → browser -----------------------------------------------------------------------

    async def pump(self, shell: Shell) -> None:
        """Shell → socket, straight (no channel layer), pausing above the high-water mark.

        Output nobody typed for (a flood, `cat` of a large file, a build log) is paced: after
        TERMINAL_PACE_FRAMES such frames within one interval (TERMINAL_PACE_INTERVAL_MS) the pump
        waits for the interval's end, then sends all that waited as one frame: the browser draws a
        flood in a few large frames instead of thousands of small ones, while the holder goes on
        reading the shell into its buffer (up to its high-water mark). The first frame after a
        keystroke (its echo, a command's first output) never waits, and a keystroke cuts a wait
        short, so Ctrl-C's prompt never queues behind a pacing interval.
        """
        high = self.high_water
        budget = self.pace_frames
        interval = self.pace_interval_ms / 1000
        loop = asyncio.get_running_loop()
        interval_start, frames = loop.time(), 0
        while not self.closing:
            await self.window.wait()
            data = await shell.read()
            if not data:
                return
            if self.typed:
                self.typed = False
            else:
                now = loop.time()
                if now - interval_start >= interval:
                    interval_start, frames = now, 0
                frames += 1
            try:
                await self.send_bytes(bytes([OUTPUT]) + data)
            except Exception:  # the browser went away mid-send; disconnect() follows and cleans up
                self.closing = True
                return
            self.sent += len(data)
            self.unacked += len(data)
            if self.unacked >= high:
                self.window.clear()
            if self.early_input:
                # After the first output: the shell is up and its terminal raw (readline's), so the
                # early keys reach it as typed (not echoed by the line discipline first).
                await self._write_early_input(shell)
            if interval > 0 and frames >= budget:
                await self._pace(interval_start + interval - loop.time())
                interval_start, frames = loop.time(), 0

    async def _pace(self, seconds: float) -> None:
        """Wait out the pacing interval, unless a keystroke arrives: its echo must not wait."""
        if seconds <= 0 or self.typed:
            return
        loop = asyncio.get_running_loop()
        # A bare future and a timer: cheaper than wait_for (a task per wait) on the keystroke's path.
        self.pacing = waiter = loop.create_future()
        timer = loop.call_later(seconds, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self.pacing = None

    async def _write_early_input(self, shell: Shell) -> None:
        pending, self.early_input = b"".join(self.early_input), []
        if pending:
            await shell.write(pending)
            if self.recorder is not None:
                self.recorder.input(pending)

    # --- browser → shell -----------------------------------------------------------------------

    async def receive(self, frame: bytes) -> None:
        """One binary frame from the browser: its first byte the type, the rest the payload."""
        if not frame:
            await self.refuse("empty frame")
            return
        kind, payload = frame[0], frame[1:]
        if kind == INPUT:
            await self.on_input(payload)
        elif kind == ACK:
            self.on_ack(payload)
        elif kind == RESIZE:
            await self.on_resize(payload)
        else:
            await self.refuse(f"unknown frame type {kind}")

    async def on_input(self, payload: bytes) -> None:
        if self.readonly:
            return  # watchers can't type; their keystrokes are dropped silently
        if len(payload) > self.max_input_bytes:
            await self.refuse(f"input frame of {len(payload)} bytes refused (at most {self.max_input_bytes})")
            return
        if self.shell is None:
            if sum(map(len, self.early_input)) + len(payload) <= self.max_input_bytes:
                self.early_input.append(payload)
            return
        self.typed = True
        if self.pacing is not None:
            _wake(self.pacing)
        await self.shell.write(payload)
        if self.recorder is not None:
            self.recorder.input(payload)

    def on_ack(self, payload: bytes) -> None:
        if len(payload) != 4:
            self.log.warning(
                "attempt %s terminal %s: malformed ack of %d bytes", self.attempt_id, self.number, len(payload)
            )
            return
        (count,) = struct.unpack(">I", payload)
        # Never below zero: a confused client can't buy itself an unbounded window.
        self.unacked = max(0, self.unacked - count)
        if self.unacked <= self.low_water:
            self.window.set()

    async def on_resize(self, payload: bytes) -> None:
        if len(payload) != 4:
            await self.refuse(f"malformed resize frame ({len(payload)} bytes, expected 4)")
            return
        if self.readonly:
            return  # the expert's window size is the expert's
        cols, rows = struct.unpack(">HH", payload)
        clamped = clamp_size(cols, rows)
        if clamped != (cols, rows):
            where = f"attempt {self.attempt_id} terminal {self.number}"
            self.log.warning("%s: resize %sx%s clamped to %sx%s", where, cols, rows, *clamped)
        self.cols, self.rows = clamped
        if self.shell is not None:
            self.shell.resize(*clamped)
        if self.recorder is not None:
            self.recorder.resize(*clamped)
