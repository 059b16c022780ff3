"""A real SSH server on 127.0.0.1 for the tests: asyncssh, as a workstation's sshd treats the site's key.

The site's key there is limited to the gate (`command="rebench-gate",restrict` in root's
authorized_keys): whatever command line the client sends, the server runs `python -m
workstation.gate` as root with that line in SSH_ORIGINAL_COMMAND, on pipes (no PTY), in the
environment a workstation's set-up writes: here, this test's settings (the same machine, the same
folders). `gate=False` runs the client's command itself as the shared user instead (in a PTY when
one is asked for), for tests of the server itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import struct
import subprocess
import sys
import termios
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
from django.conf import settings

from workstation.users import shared_user

# The settings the workstation's side reads (workstation/), as this test has them: its environment file.
_SHARED = (
    "DATA_DIR",
    "PROTECTED_DIR",
    "TERMINAL_WORKSPACE_ROOT",
    "TERMINAL_HOLDER_DIR",
    "TERMINAL_TMUX_SOCKET_PREFIX",
    "TERMINAL_TMUX_USER",
    "TERMINAL_LOCAL_USER",
    "TERMINAL_SHELL",
    "TERMINAL_API_URL",
    "TERMINAL_REPLAY_BYTES",
    "TERMINAL_ATTEMPT_USERS",
    "TERMINAL_ATTEMPT_USER_PREFIX",
    "SANDBOX_STATE_DIR",
    "SANDBOX_TOOLS_DIR",
    "SANDBOX_BWRAP",
    "SANDBOX_PYTHON",
    "SANDBOX_ALLOW_UNSAFE",
    "SANDBOX_CGROUP_VERSION",
    "SANDBOX_CGROUP_ROOT",
    "SANDBOX_CGROUP_PARENT",
    "SANDBOX_PIDS_MAX",
    "SANDBOX_MEMORY_GB",
    "SANDBOX_DEV_DIR",
    "SANDBOX_SHARE_PYTHON_PACKAGES",
    "SANDBOX_RO_BINDS",
    "SSH_ACCESS_KEYS_DIR",
    "SSH_ACCESS_MAX_SESSIONS",
    "SSH_ACCESS_TUNNEL",
    "SSH_ACCESS_SSHD",
)


def _as_env(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Path):
        return str(value)
    if isinstance(value, list) and all(isinstance(item, tuple) and len(item) == 2 for item in value):
        return ",".join(f"{outside}:{inside}" for outside, inside in value)  # SANDBOX_RO_BINDS
    return None


def workstation_settings() -> dict[str, str]:
    """The workstation's environment file for this test: its settings that the workstation's side reads."""
    chosen = {name: _as_env(getattr(settings, name)) for name in _SHARED}
    return {name: value for name, value in chosen.items() if value is not None}


def gate_environment(command: str) -> dict[str, str]:
    """What sshd gives the gate: the workstation's environment file (this test's settings) and the line asked for."""
    env = {**os.environ, **workstation_settings()}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["SSH_ORIGINAL_COMMAND"] = command
    return env


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


async def _run_in_pipes(process: asyncssh.SSHServerProcess[bytes], *, gate: bool = False) -> int:
    if gate:
        argv = [sys.executable, "-m", "workstation.gate", "--env", "/nonexistent"]
        options: dict[str, Any] = {"env": gate_environment(process.command or ""), "cwd": str(settings.BASE_DIR)}
    else:
        argv = ["/bin/bash", "-c", process.command or "true"]
        options = _child_options()
    child = await asyncio.create_subprocess_exec(
        *argv,
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


async def _handle(process: asyncssh.SSHServerProcess[bytes], *, gate: bool) -> None:
    try:
        if gate:
            status = await _run_in_pipes(process, gate=True)  # `restrict`: never a PTY
        elif process.term_type:
            status = await _run_in_pty(process)
        else:
            status = await _run_in_pipes(process)
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
    directory: Path, *, authorize_client: bool = True, wrong_host_key: bool = False, gate: bool = True
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
        process_factory=functools.partial(_handle, gate=gate),
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
