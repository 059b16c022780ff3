"""Helpers for the terminal tests: a real consumer over channels' communicator, frames, directories."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import unquote, urlparse

from asgiref.testing import ApplicationCommunicator

from tests.conftest import skip_without
from trials.terminal_bridge import ACK, INPUT, OUTPUT, RESIZE

PROMPT = "READY$ "


def sync(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in its own event loop thread (no asyncio plugin here).

    A thread of its own, because Playwright's sync API (the browser tests' session fixture) leaves
    an event loop running in the main thread, where asyncio.run and async_to_sync refuse to start.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, fn(*args, **kwargs)).result()

    return wrapper


def _no_op() -> None:
    pass


class WebsocketCommunicator(ApplicationCommunicator):
    """A WebSocket client for an ASGI app in this event loop (channels.testing would need daphne)."""

    def __init__(self, application: Any, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        parsed = urlparse(path)
        self.scope = {
            "type": "websocket",
            "path": unquote(parsed.path),
            "query_string": parsed.query.encode(),
            "headers": headers or [],
            "subprotocols": [],
        }
        super().__init__(application, self.scope)

    async def send_input(self, message: dict[str, Any]) -> None:
        # As channels' own communicator: the test's database connection must survive the consumer.
        with mock.patch("channels.db.close_old_connections", _no_op):
            await super().send_input(message)

    async def receive_output(self, timeout: float = 1) -> dict[str, Any]:
        # Unlike asgiref's, a timeout here leaves the application running: tests poll with short waits.
        if self.future.done():
            self.future.result()
        with mock.patch("channels.db.close_old_connections", _no_op):
            return await asyncio.wait_for(self.output_queue.get(), timeout)

    async def connect(self, timeout: float = 1) -> tuple[bool, Any]:
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        return True, response.get("subprotocol")

    async def send_to(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is not None:
            await self.send_input({"type": "websocket.receive", "text": text_data})
        else:
            await self.send_input({"type": "websocket.receive", "bytes": bytes_data})

    async def disconnect(self, code: int = 1000, timeout: float = 5) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)


def make_dirs(settings: Any, *, tools: tuple[str, ...] = ("bwrap",)) -> Path:
    """Workspaces and recordings under a world-traversable directory: the shell runs as another user.

    Every terminal test starts here: where this machine lacks `tools` (the shell's bubblewrap
    sandbox, on this machine or on the SSH test server, which is this machine too) the test is
    skipped with the reason, before anything is made.
    """
    skip_without(*tools)
    root = Path(tempfile.mkdtemp(prefix="rebench-term-", dir="/tmp"))
    root.chmod(0o755)
    settings.TERMINAL_WORKSPACE_ROOT = root / "workspaces"
    settings.MEDIA_ROOT = root / "media"
    settings.TERMINAL_RECORDING_SPOOL = root / "spool"
    settings.TERMINAL_RECORDING_FLUSH_SECONDS = 0.5
    settings.SANDBOX_STATE_DIR = root / "sandboxes"
    settings.SANDBOX_TOOLS_DIR = root / "tools"
    settings.PROTECTED_DIR = root / "protected"
    settings.TERMINAL_HOLDER_DIR = root / "terminals"
    return root


def cleanup_dirs(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


def remove_remote_spool(attempt_id: int) -> None:
    """What the test SSH server's gate (this machine, as root) kept for an attempt: holders, sandbox, recordings."""
    from workstation import gate
    from workstation.backends.local import end_attempt_sync

    end_attempt_sync(attempt_id)
    shutil.rmtree(gate.recordings_dir(attempt_id), ignore_errors=True)


def ws_path(attempt_id: int, number: int = 1, cols: int = 80, rows: int = 24) -> str:
    return f"/ws/attempts/{attempt_id}/terminal/{number}/?cols={cols}&rows={rows}"


def communicator(app: Any, path: str, user: Any = None, origin: str | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode())] if origin else []
    comm = WebsocketCommunicator(app, path, headers=headers)
    if user is not None:
        comm.scope["user"] = user
    return comm


def input_frame(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return bytes([INPUT]) + data


def resize_frame(cols: int, rows: int) -> bytes:
    return bytes([RESIZE]) + struct.pack(">HH", cols, rows)


def ack_frame(count: int) -> bytes:
    return bytes([ACK]) + struct.pack(">I", count)


class Screen:
    """Reads a terminal socket like the browser does: output accumulates, acks go back, JSON is kept."""

    def __init__(self, comm: WebsocketCommunicator, *, ack: bool = True) -> None:
        self.comm = comm
        self.ack = ack
        self.output = b""
        # (arrival time, size) of every output frame: how the server paced what it sent.
        self.frames: list[tuple[float, int]] = []
        self.messages: list[dict[str, Any]] = []
        self.closed_code: int | None = None

    async def pump_once(self, timeout: float) -> bool:
        try:
            message = await self.comm.receive_output(timeout)
        except TimeoutError:
            return False
        if message["type"] == "websocket.close":
            self.closed_code = message.get("code")
            return True
        if message.get("bytes"):
            data = message["bytes"]
            assert data[0] == OUTPUT
            self.output += data[1:]
            self.frames.append((time.monotonic(), len(data) - 1))
            if self.ack:
                await self.comm.send_to(bytes_data=ack_frame(len(data) - 1))
        elif message.get("text"):
            self.messages.append(json.loads(message["text"]))
        return True

    async def until(self, needle: str | bytes, timeout: float = 10.0, start: int = 0) -> float:
        """Wait until `needle` shows in the output after offset `start`; returns the seconds it took."""
        needle_b = needle.encode() if isinstance(needle, str) else needle
        began = time.monotonic()
        while needle_b not in self.output[start:]:
            left = timeout - (time.monotonic() - began)
            if left <= 0 or self.closed_code is not None:
                raise AssertionError(f"{needle!r} not seen in {timeout}s; got {self.output[-2000:]!r}")
            await self.pump_once(min(left, 1.0))
        return time.monotonic() - began

    async def message(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        began = time.monotonic()
        while True:
            for m in self.messages:
                if m.get("type") == kind:
                    self.messages.remove(m)
                    return m
            left = timeout - (time.monotonic() - began)
            if left <= 0 or self.closed_code is not None:
                raise AssertionError(f"no {kind!r} message in {timeout}s; got {self.messages}")
            await self.pump_once(min(left, 1.0))

    async def drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and self.closed_code is None:
            await self.pump_once(max(0.01, end - time.monotonic()))

    async def type(self, text: str) -> None:
        await self.comm.send_to(bytes_data=input_frame(text))

    async def ready(self) -> None:
        """Wait for the shell, then give it a prompt the tests can recognise."""
        await self.message("hello")
        await self.message("status")
        await self.type(f"PS1='{PROMPT[:-2]}''$ '; stty -echoctl\r")
        await self.until(PROMPT)


async def open_screen(app: Any, attempt_id: int, user: Any, number: int = 1, **kw: Any) -> Screen:
    comm = communicator(app, ws_path(attempt_id, number, **kw), user)
    connected, code = await comm.connect(timeout=10)
    assert connected, f"refused with {code}"
    return Screen(comm)


async def assert_shell_survives_a_dropped_socket(app: Any, attempt: Any) -> None:
    """`export X=42`, drop the socket, reconnect: the same shell (kept by tmux) still knows X."""
    screen = await open_screen(app, attempt.pk, attempt.user)
    await screen.ready()
    await screen.type("export X=42\r")
    await asyncio.sleep(0.3)
    await screen.comm.disconnect()

    again = await open_screen(app, attempt.pk, attempt.user)
    await again.message("hello")
    await again.message("status")
    await asyncio.sleep(0.3)
    start = len(again.output)
    await again.type("echo X is $X.\r")
    await again.until("X is 42.", start=start)
    await again.comm.disconnect()


async def assert_a_flood_stops_at_once_on_ctrl_c(app: Any, attempt: Any) -> None:
    """`yes` for 3 s, then Ctrl-C: the prompt is back within a second."""
    screen = await open_screen(app, attempt.pk, attempt.user)
    await screen.ready()
    await screen.type("yes\r")
    await screen.drain(3.0)
    flooded = len(screen.output)
    assert flooded > 10_000, "yes should have printed a lot"
    await screen.type("\x03")
    # What was already in flight (an SSH window, a frame) comes first, then the prompt.
    took = await screen.until(PROMPT, start=flooded, timeout=5)
    assert took < 1.0, f"the prompt took {took:.2f}s to come back after Ctrl-C"
    await screen.comm.disconnect()


def point_at_ssh_server(attempt: Any, server: Any, settings: Any) -> None:
    """Send the attempt's SSH workstation to the test SSH server, trusting its host key and our key."""
    from trials.models import Workstation

    Workstation.objects.filter(pk=attempt.workstation_id).update(ssh_port=server.port)
    settings.TERMINAL_SSH_KNOWN_HOSTS = str(server.known_hosts)
    settings.TERMINAL_SSH_KEY = str(server.client_key)


async def settle() -> None:
    await asyncio.sleep(0)


def router():
    """The site's WebSocket routes, as the ASGI app serves them."""
    from channels.routing import URLRouter

    from rebench_site.routing import websocket_urlpatterns

    return URLRouter(websocket_urlpatterns)


def holders_alive(attempt_id: int, wait: float = 3.0) -> bool:
    """Whether a terminal holder of the attempt runs, here or on the SSH test server (which is this
    machine too, its gate using this machine's folders): a live process named in a pid file of the
    attempt's terminals folder. A holder stopped with SIGTERM drains its shell's output first, so an
    answer of False waits up to `wait` seconds for it."""
    from workstation import layout

    folders = [layout.terminals_dir(attempt_id)]
    deadline = time.monotonic() + wait
    while True:
        alive = False
        for pidfile in (p for folder in folders if folder.is_dir() for p in folder.glob("*.pid")):
            with contextlib.suppress(OSError, ValueError):
                pid = int(pidfile.read_text().strip())
                alive = alive or b"rebench-termhold" in Path(f"/proc/{pid}/cmdline").read_bytes()
        if alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)
