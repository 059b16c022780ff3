"""The `ssh` backend: the shell on a remote workstation over asyncssh, inside tmux, host key checked."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

import asyncssh
from django.conf import settings

from trials.backends import BackendError, ShellSpec, shell_join, tmux_argv, tmux_kill_argv
from trials.backends.local import READ_CHUNK, TASK_SOURCE

log = logging.getLogger(__name__)

# One connection per (host, port, user) and event loop: tabs and reconnects share it.
_connections: dict[tuple[Any, ...], tuple[asyncio.AbstractEventLoop, asyncssh.SSHClientConnection]] = {}
_locks: dict[tuple[Any, ...], tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}
REMOTE_BIN = "$HOME/.rebench/bin"
REMOTE_WORKSPACES = "$HOME/rebench-workspaces"


class SSHShell:
    def __init__(self, process: asyncssh.SSHClientProcess) -> None:
        self.process = process
        self._closed = False

    async def read(self) -> bytes:
        try:
            data = await self.process.stdout.read(READ_CHUNK)
        except (asyncssh.Error, OSError, asyncio.IncompleteReadError):
            return b""
        if not data:
            return b""
        return data

    async def write(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            self.process.stdin.write(data)
            await self.process.stdin.drain()
        except (asyncssh.Error, OSError, BrokenPipeError):
            return

    def resize(self, cols: int, rows: int) -> None:
        if not self._closed:
            with contextlib.suppress(asyncssh.Error, OSError):
                self.process.change_terminal_size(cols, rows)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.process.close()  # the remote tmux client sees a hang-up and detaches
        with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
            await asyncio.wait_for(self.process.wait_closed(), timeout=2)


class SSHBackend:
    def __init__(self, *, host: str, port: int, username: str) -> None:
        self.host = host
        self.port = port
        self.username = username

    @classmethod
    def for_workstation(cls, workstation: Any) -> SSHBackend:
        return cls(
            host=workstation.host,
            port=int(workstation.ssh_port or 22),
            username=workstation.ssh_user or "rebench",
        )

    @property
    def _key(self) -> tuple[Any, ...]:
        return (self.host, self.port, self.username)

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        held = _locks.get(self._key)
        if held is None or held[0] is not loop:
            held = _locks[self._key] = (loop, asyncio.Lock())
        return held[1]

    async def _connect(self) -> asyncssh.SSHClientConnection:
        key = self._key
        async with self._lock():
            cached = _connections.get(key)
            if cached is not None and cached[0] is asyncio.get_running_loop() and not cached[1].is_closed():
                return cached[1]
            known_hosts = settings.TERMINAL_SSH_KNOWN_HOSTS
            if not known_hosts or not os.path.exists(known_hosts):
                raise BackendError(
                    f"No known_hosts file at {known_hosts!r}: the workstation's host key can't be checked, "
                    "so the server won't connect. An admin sets TERMINAL_SSH_KNOWN_HOSTS."
                )
            options: dict[str, Any] = {
                "port": self.port,
                "username": self.username,
                "known_hosts": known_hosts,
                "keepalive_interval": settings.TERMINAL_SSH_KEEPALIVE_SECONDS,
                "keepalive_count_max": 3,
                "connect_timeout": settings.TERMINAL_SSH_CONNECT_TIMEOUT_SECONDS,
                "agent_path": None,
            }
            if settings.TERMINAL_SSH_KEY:
                options["client_keys"] = [settings.TERMINAL_SSH_KEY]
            where = f"{self.username}@{self.host}:{self.port}"
            try:
                conn = await asyncssh.connect(self.host, **options)
            except asyncssh.HostKeyNotVerifiable as exc:
                raise BackendError(f"The host key of {where} is not the one in known_hosts: refusing ({exc}).") from exc
            except asyncssh.PermissionDenied as exc:
                raise BackendError(f"{where} refused the server's SSH key ({exc.reason}).") from exc
            except (OSError, TimeoutError, asyncssh.Error) as exc:
                raise BackendError(f"Can't reach the workstation {where}: {exc}.") from exc
            _connections[key] = (asyncio.get_running_loop(), conn)
            await self._install_task(conn)
            return conn

    async def _install_task(self, conn: asyncssh.SSHClientConnection) -> None:
        """Put the `task` command on the workstation (Python stdlib only, so any python3 runs it)."""
        script = TASK_SOURCE.read_text()
        command = f'mkdir -p "{REMOTE_BIN}" && cat > "{REMOTE_BIN}/task" && chmod 755 "{REMOTE_BIN}/task"'
        result = await conn.run(command, input=script, check=False)
        if result.exit_status != 0:
            log.warning("%s: could not install the task command: %s", self.host, result.stderr)

    async def _run(self, command: str) -> asyncssh.SSHCompletedProcess:
        conn = await self._connect()
        try:
            return await conn.run(command, check=False)
        except (asyncssh.Error, OSError) as exc:
            _connections.pop(self._key, None)  # a broken connection is not reused
            raise BackendError(f"The connection to {self.host} failed: {exc}.") from exc

    async def session_exists(self, spec: ShellSpec) -> bool:
        result = await self._run(shell_join(["tmux", "-L", spec.socket_name, "has-session", "-t", spec.session_name]))
        return result.exit_status == 0

    async def open(self, spec: ShellSpec) -> SSHShell:
        conn = await self._connect()
        workspace = f"{REMOTE_WORKSPACES}/attempt-{spec.attempt_id}"
        if spec.token:
            # Through stdin: asyncssh logs commands, and the workstation's `ps` shows them.
            put = f'umask 077 && mkdir -p "$HOME/.rebench/tokens" && cat > "$HOME/{spec.token_file}"'
            try:
                result = await conn.run(put, input=spec.token, check=False)
            except (asyncssh.Error, OSError) as exc:
                _connections.pop(self._key, None)
                raise BackendError(f"The connection to {self.host} failed: {exc}.") from exc
            if result.exit_status != 0:
                raise BackendError(f"Could not place the task token on {self.host}: {result.stderr}")
        argv = tmux_argv(spec, tmux="tmux", workspace="@WORKSPACE@", program="bash", home="@HOME@")
        command = shell_join(argv).replace("@WORKSPACE@", f'"{workspace}"')
        command = command.replace("REBENCH_TOKEN_FILE=@HOME@/", 'REBENCH_TOKEN_FILE="$HOME"/')
        # $HOME expands on the workstation; the tmux server inherits PATH, so shells find `task`.
        preamble = (
            'command -v tmux >/dev/null || { echo "tmux is not installed on this workstation: '
            'the terminal needs it (apt-get install tmux)."; exit 127; }; '
            f'mkdir -p "{workspace}" && chmod 700 "{workspace}" && '
            f'export PATH="{REMOTE_BIN}:$PATH" && exec '
        )
        try:
            process = await conn.create_process(
                preamble + command,
                term_type="xterm-256color",
                term_size=(spec.cols, spec.rows),
                encoding=None,
            )
        except (asyncssh.Error, OSError) as exc:
            _connections.pop(self._key, None)
            raise BackendError(f"The workstation {self.host} refused a shell: {exc}.") from exc
        return SSHShell(process)

    async def end_attempt(self, attempt_id: int) -> None:
        try:
            await self._run(shell_join(tmux_kill_argv(attempt_id, tmux="tmux")))
        except BackendError as exc:
            log.warning("attempt %s: could not end its tmux sessions on %s: %s", attempt_id, self.host, exc)
