"""The terminal bridge alone (trials/terminal_bridge.py): no Channels, no database, a real shell on a real PTY."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import logging
import os
import struct
import subprocess
import sys
import termios
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from trials.terminal_bridge import ACK, INPUT, OUTPUT, RESIZE, TerminalBridge
from workstation.backends import Shell

ROOT = Path(__file__).resolve().parents[2]


def sync(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in an event loop of its own thread (a Playwright session may hold the main thread's)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, fn(*args, **kwargs)).result()

    return wrapper


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class PtyShell(Shell):
    """A process on a PTY of its own, as the bridge sees a shell: read, write, resize, close."""

    def __init__(self, argv: list[str]) -> None:
        self.fd, slave = os.openpty()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm", "PS1": "$ "}
        try:
            self.process = subprocess.Popen(
                argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True
            )
        finally:
            os.close(slave)
        os.set_blocking(self.fd, False)
        self.closed = False

    async def read(self) -> bytes:
        loop = asyncio.get_running_loop()
        while not self.closed:
            try:
                return os.read(self.fd, 4096)
            except BlockingIOError:
                pass
            except OSError as exc:  # EIO: the process and its side of the PTY are gone
                if exc.errno in (errno.EIO, errno.EBADF):
                    return b""
                raise
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self.fd, _wake, readable)
            try:
                await readable
            finally:
                loop.remove_reader(self.fd)
        return b""

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view) :]
            except BlockingIOError:
                await asyncio.sleep(0.01)

    def resize(self, cols: int, rows: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.process.kill()
        await asyncio.to_thread(self.process.wait)
        os.close(self.fd)


class Browser:
    """The other end of the bridge: the frames it was sent, the refusals it was told."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.refusals: list[str] = []

    async def send_bytes(self, frame: bytes) -> None:
        assert frame[0] == OUTPUT
        self.frames.append(frame[1:])

    async def refuse(self, why: str) -> None:
        self.refusals.append(why)

    @property
    def output(self) -> bytes:
        return b"".join(self.frames)

    async def until(self, needle: bytes, timeout: float = 10) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while needle not in self.output:
            assert asyncio.get_running_loop().time() < deadline, f"{needle!r} never came: {self.output[-300:]!r}"
            await asyncio.sleep(0.02)

    async def settled(self, quiet: float = 0.3, timeout: float = 10) -> int:
        """Bytes received once nothing more has arrived for `quiet` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        seen = -1
        while len(self.output) != seen:
            assert asyncio.get_running_loop().time() < deadline, "the output never settled"
            seen = len(self.output)
            await asyncio.sleep(quiet)
        return seen


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def input(self, data: bytes) -> None:
        self.events.append(("i", data))

    def resize(self, cols: int, rows: int) -> None:
        self.events.append(("r", (cols, rows)))

    def marker(self, label: str) -> None:
        self.events.append(("m", label))


def make_bridge(browser: Browser, **overrides: Any) -> TerminalBridge:
    values: dict[str, Any] = {
        "readonly": False,
        "high_water": 64 * 1024,
        "low_water": 16 * 1024,
        "pace_frames": 4,
        "pace_interval_ms": 0,
        "max_input_bytes": 256,
    }
    values.update(overrides)
    return TerminalBridge(send_bytes=browser.send_bytes, refuse=browser.refuse, **values)


def frame(kind: int, payload: bytes) -> bytes:
    return bytes([kind]) + payload


def bash() -> PtyShell:
    return PtyShell(["bash", "--norc", "--noprofile", "-i"])


async def attach(bridge: TerminalBridge, shell: PtyShell) -> asyncio.Task[None]:
    bridge.shell = shell
    return asyncio.create_task(bridge.pump(shell))


async def detach(bridge: TerminalBridge, pump: asyncio.Task[None]) -> None:
    bridge.stop()
    pump.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pump
    if bridge.shell is not None:
        await bridge.shell.close()
        bridge.shell = None


def test_the_bridge_imports_neither_channels_nor_django() -> None:
    probe = "import sys, trials.terminal_bridge; print(sorted({m.split('.')[0] for m in sys.modules}))"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    found = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert "'channels'" not in found.stdout
    assert "'django'" not in found.stdout


@sync
async def test_a_flood_stops_at_the_high_water_mark_until_an_ack_brings_it_below_low_water() -> None:
    browser = Browser()
    high, low = 8 * 1024, 2 * 1024
    bridge = make_bridge(browser, high_water=high, low_water=low)
    pump = await attach(bridge, PtyShell(["yes"]))
    try:
        sent = await browser.settled()
        assert sent == bridge.unacked >= high, "the bridge sends up to the high-water mark"
        assert sent < high + 4096, "then at most the read that crossed it"
        assert not bridge.window.is_set()
        await asyncio.sleep(0.5)
        assert len(browser.output) == sent, "nothing more while nothing is acknowledged"

        await bridge.receive(frame(ACK, struct.pack(">I", sent - low - 1)))
        assert bridge.unacked == low + 1
        await asyncio.sleep(0.5)
        assert len(browser.output) == sent, "still above low water: the window stays shut"

        await bridge.receive(frame(ACK, struct.pack(">I", 1)))
        await asyncio.sleep(0.5)
        assert len(browser.output) > sent, "at low water the flood resumes"
        assert bridge.unacked >= high, "and stops again at the high-water mark"
        # An ack of more than was sent leaves nothing unacked, never a credit below zero.
        await bridge.receive(frame(ACK, struct.pack(">I", 2**32 - 1)))
        assert bridge.unacked == 0
    finally:
        await detach(bridge, pump)


@sync
async def test_malformed_and_unknown_frames_are_refused_with_a_reason_and_the_bridge_keeps_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    browser = Browser()
    bridge = make_bridge(browser)
    pump = await attach(bridge, bash())
    try:
        await browser.until(b"$ ")
        await bridge.receive(b"")
        await bridge.receive(frame(9, b"junk"))
        await bridge.receive(frame(RESIZE, b"\x00"))
        assert browser.refusals == [
            "empty frame",
            "unknown frame type 9",
            "malformed resize frame (1 bytes, expected 4)",
        ]
        # A malformed ack is the browser's bug, not the user's: a log line, and the window is untouched.
        unacked = bridge.unacked
        with caplog.at_level(logging.WARNING, logger="trials.terminal_bridge"):
            await bridge.receive(frame(ACK, b"\x00\x01"))
        assert bridge.unacked == unacked
        assert "malformed ack of 2 bytes" in caplog.text
        assert len(browser.refusals) == 3

        # Still working: a size below the minimum is clamped, and the shell sees it.
        await bridge.receive(frame(RESIZE, struct.pack(">HH", 0, 0)))
        assert (bridge.cols, bridge.rows) == (20, 5)
        await bridge.receive(frame(INPUT, b"stty size; echo SI''ZED\r"))
        await browser.until(b"SIZED")
        assert b"5 20" in browser.output
        assert "resize 0x0 clamped to 20x5" in caplog.text
    finally:
        await detach(bridge, pump)


@sync
async def test_input_above_the_maximum_is_refused_and_never_reaches_the_shell() -> None:
    browser = Browser()
    recorder = Recorder()
    bridge = make_bridge(browser, max_input_bytes=64, recorder=recorder)
    pump = await attach(bridge, bash())
    try:
        await browser.until(b"$ ")
        too_big = b"echo TOO''BIG" + b" " * 60 + b"\r"
        await bridge.receive(frame(INPUT, too_big))
        assert browser.refusals == [f"input frame of {len(too_big)} bytes refused (at most 64)"]
        await bridge.receive(frame(INPUT, b"echo FI''NE\r"))
        await browser.until(b"FINE")
        assert b"TOO" not in browser.output, "the refused frame was never written"
        assert recorder.events == [("i", b"echo FI''NE\r")], "nor recorded"
    finally:
        await detach(bridge, pump)


@sync
async def test_keys_typed_before_the_shell_exists_are_kept_up_to_the_maximum_and_written_once_it_speaks() -> None:
    browser = Browser()
    recorder = Recorder()
    bridge = make_bridge(browser, max_input_bytes=32, recorder=recorder)
    await bridge.receive(frame(INPUT, b"echo EAR''LY\r"))  # 13 bytes: kept
    await bridge.receive(frame(INPUT, b"echo ON''E\r"))  # 13 + 11 <= 32: kept
    await bridge.receive(frame(INPUT, b"echo LA''TE\r"))  # 24 + 12 > 32: dropped
    assert browser.refusals == []
    assert recorder.events == [], "nothing is written or recorded before there is a shell"

    pump = await attach(bridge, bash())
    try:
        await browser.until(b"EARLY")
        await browser.until(b"ONE")
        assert b"LATE" not in browser.output
        assert bridge.early_input == []
        assert recorder.events == [("i", b"echo EAR''LY\recho ON''E\r")], "written and recorded at once"
    finally:
        await detach(bridge, pump)


@sync
async def test_a_watcher_can_neither_type_nor_resize() -> None:
    browser = Browser()
    recorder = Recorder()
    bridge = make_bridge(browser, readonly=True, recorder=recorder)
    pump = await attach(bridge, bash())
    try:
        await browser.until(b"$ ")
        await bridge.receive(frame(INPUT, b"echo WAT''CHER\r"))
        await bridge.receive(frame(RESIZE, struct.pack(">HH", 100, 40)))
        await asyncio.sleep(0.3)
        assert b"WATCHER" not in browser.output
        assert (bridge.cols, bridge.rows) == (80, 24)
        assert browser.refusals == []
        assert recorder.events == []
    finally:
        await detach(bridge, pump)


@sync
async def test_the_first_frame_after_a_keystroke_never_waits_for_the_pacing_interval() -> None:
    browser = Browser()
    # One frame per 5 s interval: a flood waits out nearly every interval, an echo never does.
    bridge = make_bridge(browser, pace_frames=1, pace_interval_ms=5000)
    pump = await attach(bridge, bash())
    try:
        await browser.until(b"$ ")
        loop = asyncio.get_running_loop()
        for key in (b"a", b"b", b"c"):
            start = loop.time()
            await bridge.receive(frame(INPUT, key))
            await browser.until(b"$ " + b"abc"[: b"abc".index(key) + 1], timeout=4)
            assert loop.time() - start < 1.0
    finally:
        await detach(bridge, pump)
