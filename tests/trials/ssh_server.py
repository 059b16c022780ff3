"""A real SSH server on 127.0.0.1 for the tests: asyncssh, running each command in a real PTY or pipes."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import subprocess
import termios
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from workstation.users import shared_user


def _ctty() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _child_options() -> dict[str, Any]:
    user = shared_user()  # never root, as on a real workstation
    as_user = {"user": user.uid, "group": user.gid, "extra_groups": []} if os.geteuid() == 0 else {}
    env = {"HOME": user.home, "USER": user.name, "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    return {"env": env, "cwd": user.home, **as_user}


async def _run_in_pty(process: asyncssh.SSHServerProcess[bytes]) -> int:
    loop = asyncio.get_running_loop()
    cols, rows, *_ = process.term_size
    master, slave = os.openpty()
    _set_size(slave, cols or 80, rows or 24)
    options = _child_options()
    env = {**options.pop("env"), "TERM": process.term_type or "xterm"}
    if "user" in options:
        os.fchown(slave, options["user"], options["group"])
    child = subprocess.Popen(  # the command the test's client sent
        ["/bin/bash", "-c", process.command or "bash"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=_ctty,
        env=env,
        **options,
    )
    os.close(slave)
    os.set_blocking(master, False)
    done = asyncio.Event()

    def readable() -> None:
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            process.stdout.write(data)
        else:
            loop.remove_reader(master)
            done.set()

    loop.add_reader(master, readable)

    async def feed() -> None:
        while True:
            try:
                data = await process.stdin.read(65536)
            except asyncssh.TerminalSizeChanged as change:
                _set_size(master, change.width, change.height)
                continue
            if not data:
                return
            with contextlib.suppress(OSError):
                os.write(master, data)

    feeder = asyncio.create_task(feed())
    await done.wait()
    feeder.cancel()
    os.close(master)
    return await asyncio.to_thread(child.wait)


async def _run_in_pipes(process: asyncssh.SSHServerProcess[bytes]) -> int:
    options = _child_options()
    child = await asyncio.create_subprocess_exec(
        "/bin/bash",
        "-c",
        process.command or "true",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        **options,
    )
    # Output by hand: asyncssh's redirect ends the channel's output at the first source's EOF, so a
    # command that closes its stderr early (`2>/dev/null`: a terminal holder's `connect`) would lose
    # its stdout. Like sshd, the channel ends (process.exit) once both are read to the end.
    await process.redirect(stdin=child.stdin)
    assert child.stdout is not None
    assert child.stderr is not None

    async def copy(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
        with contextlib.suppress(asyncssh.Error, ConnectionError, OSError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()

    await asyncio.gather(copy(child.stdout, process.stdout), copy(child.stderr, process.stderr))
    return await child.wait()


async def _handle(process: asyncssh.SSHServerProcess[bytes]) -> None:
    runner = _run_in_pty if process.term_type else _run_in_pipes
    try:
        status = await runner(process)
    except Exception as exc:  # a broken test server must say why, not hang
        process.stderr.write(f"test ssh server: {exc}\n".encode())
        status = 1
    process.exit(status)


@dataclass
class SSHServer:
    port: int
    known_hosts: Path
    client_key: Path
    server: asyncssh.SSHAcceptor


@contextlib.asynccontextmanager
async def ssh_server(
    directory: Path, *, authorize_client: bool = True, wrong_host_key: bool = False
) -> AsyncIterator[SSHServer]:
    """An SSH server on a free loopback port; known_hosts and the client key written into `directory`."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    authorized = client_key if authorize_client else asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.create_server(
        asyncssh.SSHServer,
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        authorized_client_keys=asyncssh.import_authorized_keys(authorized.export_public_key().decode()),
        process_factory=_handle,
        encoding=None,
        line_editor=False,
    )
    port = server.sockets[0].getsockname()[1]
    client_path = directory / "id_ed25519"
    client_key.write_private_key(str(client_path))
    known_key = asyncssh.generate_private_key("ssh-ed25519") if wrong_host_key else host_key
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {known_key.export_public_key().decode().strip()}\n")
    try:
        yield SSHServer(port=port, known_hosts=known_hosts, client_key=client_path, server=server)
    finally:
        server.close()
        await server.wait_closed()
