"""A real SSH server on 127.0.0.1 for the tests: asyncssh, as a workstation's sshd treats the site's key.

The site's key there is limited to the gate (`command="rebench-gate",restrict` in root's
authorized_keys): whatever command line the client sends, the server runs `python -m
workstation.gate` as root with that line in SSH_ORIGINAL_COMMAND, on pipes (no PTY), in the
environment a workstation's set-up writes: here, this test's settings (the same machine, the same
folders).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
from django.conf import settings

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


async def _run_gate(process: asyncssh.SSHServerProcess[bytes]) -> int:
    """The gate as root, on pipes (`restrict`: never a PTY), with the client's command line in SSH_ORIGINAL_COMMAND."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workstation.gate",
        "--env",
        "/nonexistent",
        env=gate_environment(process.command or ""),
        cwd=str(settings.BASE_DIR),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
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
    try:
        status = await _run_gate(process)
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
