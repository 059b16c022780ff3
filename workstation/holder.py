"""The server's side of a terminal's PTY holder (workstation/tools/term_holder.py): its commands and its Shell.

One holder per terminal runs on the workstation as the terminal user, outside the attempt's sandbox:
it owns the PTY the sandboxed shell runs on, records every byte, and keeps the shell alive while no
tab is attached. Both backends speak its frames over a byte stream: a Unix socket here, the stdin
and stdout of `term_holder.py connect` over SSH.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import struct
from collections.abc import Awaitable, Callable
from typing import Protocol

from workstation.backends import Shell
from workstation.tools import term_holder as protocol

READ_CHUNK = 256 * 1024
TOOL = "rebench-termhold"  # its name in the workstation's tools folder


class Reader(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


def session_name(attempt_id: int, number: int) -> str:
    """The terminal's name in the database (TerminalSession.tmux_session, named when tmux held terminals)."""
    return f"attempt-{int(attempt_id)}-terminal-{int(number)}"


def socket_name(number: int) -> str:
    return f"terminal-{int(number)}.sock"


def start_argv(
    *,
    python: str,
    tool: str,
    socket: str,
    spool: str,
    cols: int,
    rows: int,
    replay_bytes: int,
    attach: list[str],
) -> list[str]:
    """Start the terminal's holder unless it runs; returns once it listens. `attach` runs on its PTY."""
    argv = [python, "-I", "-S", tool, "start", "--socket", socket, "--cols", str(cols), "--rows", str(rows)]
    argv += ["--replay-bytes", str(int(replay_bytes))]
    if spool:
        argv += ["--spool", spool]
    return [*argv, "--", *attach]


def attach_argv(*, python: str, spawner: str, spawn_socket: str, number: int) -> list[str]:
    """What runs on the holder's PTY: the sandbox spawner's client, which hands the PTY to a shell inside."""
    # -I -S: no site packages, no environment variables: every new terminal waits for this start-up.
    return [python, "-I", "-S", spawner, "attach", spawn_socket, str(int(number))]


def connect_argv(*, python: str, tool: str, socket: str) -> list[str]:
    return [python, "-I", "-S", tool, "connect", "--socket", socket]


def stop_argv(*, python: str, tool: str, directory: str) -> list[str]:
    return [python, "-I", "-S", tool, "stop", directory]


def shell_join(argv: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in argv)


def hello(*, readonly: bool, cols: int, rows: int) -> bytes:
    return protocol.frame(protocol.HELLO, json.dumps({"readonly": readonly, "cols": cols, "rows": rows}).encode())


class HolderShell(Shell):
    """A terminal through its holder: output frames in (joined while the bridge is busy), input and resizes out.

    The stream's own buffer is the flow control: while the bridge doesn't read, the stream stops
    reading, the holder's queue for us fills, and the holder stops reading the shell.
    """

    def __init__(self, reader: Reader, writer: Writer, closer: Callable[[], Awaitable[None]]) -> None:
        self.reader = reader
        self.writer = writer
        self.closer = closer
        self.decoder = protocol.Decoder()
        self.pending: list[bytes] = []
        self.exit_status: int | None = None
        self._eof = False
        self._closed = False

    async def read(self) -> bytes:
        while not self.pending and not self._eof:
            try:
                data = await self.reader.read(READ_CHUNK)
            except Exception:  # a socket's or asyncssh channel's error: the workstation or the holder went away
                data = b""
            if not data:
                self._eof = True
                break
            try:
                frames = self.decoder.feed(data)
            except ValueError:
                self._eof = True
                break
            for kind, payload in frames:
                if kind == protocol.OUTPUT:
                    self.pending.append(payload)
                elif kind == protocol.EXIT:
                    with contextlib.suppress(ValueError, AttributeError, TypeError):
                        self.exit_status = int(json.loads(payload).get("status"))
                    self._eof = True
        data = b"".join(self.pending)
        self.pending.clear()
        return data

    async def write(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            self.writer.write(protocol.frame(protocol.INPUT, data))
            await self.writer.drain()
        except Exception:  # the holder has gone (the shell exited): read() says so
            return

    def resize(self, cols: int, rows: int) -> None:
        if not self._closed:
            with contextlib.suppress(Exception):
                self.writer.write(protocol.frame(protocol.RESIZE, struct.pack(">HH", cols, rows)))

    async def close(self) -> None:
        """Detach: the holder, and the shell on its PTY, live on."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.closer(), timeout=2)


class EndedShell(Shell):
    """A watcher's view of a terminal that isn't running: nothing to read."""

    async def read(self) -> bytes:
        return b""

    async def write(self, data: bytes) -> None:
        return None

    def resize(self, cols: int, rows: int) -> None:
        return None

    async def close(self) -> None:
        return None
