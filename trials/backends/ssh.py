"""The `ssh` backend: the shell on a remote workstation over asyncssh, inside tmux, host key checked."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import asyncssh
from django.conf import settings

from trials.backends import (
    BackendError,
    ShellSpec,
    pane_pipe_argv,
    record_command,
    recorder_rearm_argv,
    shell_join,
    socket_name,
    tmux_attach_argv,
    tmux_create_argv,
    tmux_kill_argv,
)
from trials.backends.local import READ_CHUNK, RECORDER_SOURCE, TASK_SOURCE

log = logging.getLogger(__name__)

# One connection per (host, port, user) and event loop: tabs and reconnects share it.
_connections: dict[tuple[Any, ...], tuple[asyncio.AbstractEventLoop, asyncssh.SSHClientConnection]] = {}
_locks: dict[tuple[Any, ...], tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}
REMOTE_BIN = "$HOME/.rebench/bin"
# A shell channel's SSH window: the most of a workstation's output in flight to us (see open()).
SSH_WINDOW_BYTES = 128 * 1024
REMOTE_WORKSPACES = "$HOME/rebench-workspaces"
# tmux records each pane here on the workstation (trials/cast_pipe.py); the server pulls it. One
# folder per tmux server (<socket prefix>-a<attempt>): two sites sharing a login never mix spools.
REMOTE_RECORDINGS = "$HOME/.rebench/recordings"


def remote_spool(attempt_id: int) -> str:
    return f"{REMOTE_RECORDINGS}/{socket_name(attempt_id)}"


def remote_record_command(spec: ShellSpec) -> str:
    """The pane recorder's `pipe-pane` command on the workstation ($HOME expands there, in tmux's shell)."""
    spool = f"{REMOTE_RECORDINGS}/{spec.socket_name}"
    return record_command("python3", f'"{REMOTE_BIN}/rebench-record"', f'"{spool}/terminal-{spec.number}.jsonl"')


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
        """Put `task` and the pane recorder on the workstation (Python stdlib only, so any python3 runs them)."""
        for program, source in (("task", TASK_SOURCE), ("rebench-record", RECORDER_SOURCE)):
            target = f"{REMOTE_BIN}/{program}"
            command = f'mkdir -p "{REMOTE_BIN}" && cat > "{target}" && chmod 755 "{target}"'
            result = await conn.run(command, input=source.read_text(), check=False)
            if result.exit_status != 0:
                log.warning("%s: could not install %s: %s", self.host, program, result.stderr)

    async def disconnect(self) -> None:
        """Close this loop's cached connection (a one-off task's event loop ends after it)."""
        cached = _connections.get(self._key)
        if cached is not None and cached[0] is asyncio.get_running_loop():
            _connections.pop(self._key, None)
            cached[1].close()
            with contextlib.suppress(asyncssh.Error, OSError):
                await cached[1].wait_closed()

    async def _run(self, command: str, *, binary: bool = False) -> asyncssh.SSHCompletedProcess:
        conn = await self._connect()
        try:
            return await conn.run(command, check=False, encoding=None if binary else "utf-8")
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
        attach = shell_join(tmux_attach_argv(spec, tmux="tmux"))
        preamble = (
            'command -v tmux >/dev/null || { echo "tmux is not installed on this workstation: '
            'the terminal needs it (apt-get install tmux)."; exit 127; }; '
        )
        if spec.readonly:
            command = preamble + f"exec {attach}"
        else:
            # $HOME expands on the workstation (for the recorder, in the shell tmux runs it with);
            # the tmux server inherits PATH, so shells find `task`.
            spool = f"{REMOTE_RECORDINGS}/{spec.socket_name}"
            record = remote_record_command(spec)
            argv = tmux_create_argv(
                spec, tmux="tmux", workspace="@WORKSPACE@", program="bash", home="@HOME@", record=record
            )
            create = shell_join(argv).replace("@WORKSPACE@", f'"{workspace}"')
            create = create.replace("REBENCH_TOKEN_FILE=@HOME@/", 'REBENCH_TOKEN_FILE="$HOME"/')
            command = (
                preamble + f'mkdir -p "{workspace}" "{spool}" && chmod 700 "{workspace}" "{REMOTE_RECORDINGS}" && '
                f'export PATH="{REMOTE_BIN}:$PATH" && '
                # An existing session is not an error: the create is skipped and the client attaches.
                f"{{ {create} 2>&1 | grep -v '^duplicate session' ; }} ; exec {attach}"
            )
        try:
            process = await conn.create_process(
                command,
                term_type="xterm-256color",
                term_size=(spec.cols, spec.rows),
                encoding=None,
                # The most output in flight from the workstation when the browser falls behind or
                # the consumer paces a flood (asyncssh's default is 2 MB): what Ctrl-C's prompt
                # would queue behind. tmux on the workstation then blocks and redraws, as it does locally.
                window=SSH_WINDOW_BYTES,
            )
        except (asyncssh.Error, OSError) as exc:
            _connections.pop(self._key, None)
            raise BackendError(f"The workstation {self.host} refused a shell: {exc}.") from exc
        return SSHShell(process)

    async def ensure_recording(self, spec: ShellSpec) -> bool:
        """Restart the pane's recorder on the workstation if it has stopped; True if it had to."""
        if spec.readonly:
            return False
        result = await self._run(shell_join(pane_pipe_argv(spec, tmux="tmux")))
        if result.exit_status != 0 or str(result.stdout).strip() != "0":
            return False
        rearm = recorder_rearm_argv(spec, tmux="tmux", record=remote_record_command(spec))
        return (await self._run(shell_join(rearm))).exit_status == 0

    async def end_attempt(self, attempt_id: int) -> None:
        try:
            await self.end_attempt_or_raise(attempt_id)
        except BackendError as exc:
            log.warning("attempt %s: could not end its tmux sessions on %s: %s", attempt_id, self.host, exc)

    async def end_attempt_or_raise(self, attempt_id: int) -> bool:
        """Kill the attempt's tmux server on the workstation; True if one ran. BackendError if unreachable."""
        result = await self._run(shell_join(tmux_kill_argv(attempt_id, tmux="tmux")))
        return result.exit_status == 0

    async def pull_recording(self, attempt_id: int, number: int, dest: Path) -> int:
        """Append what the workstation's pane recorder wrote since the last pull to `dest`; returns bytes pulled.

        Whole lines only: a line the recorder is writing now comes with the next pull.
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        offset = dest.stat().st_size if dest.exists() else 0
        remote = f"{remote_spool(attempt_id)}/terminal-{number}.jsonl"
        result = await self._run(f'tail -c +{offset + 1} "{remote}" 2>/dev/null', binary=True)
        data = result.stdout or b""
        data = data[: data.rfind(b"\n") + 1]
        if data:
            with dest.open("ab") as f:
                f.write(data)
        return len(data)


async def end_attempt_and_pull(workstation: Any, attempt_id: int, recordings: list[tuple[int, Path]]) -> bool:
    """For an ended attempt, with or without a browser attached: kill its tmux server on the workstation,
    then pull what the pane recorders wrote into the local spool files. BackendError while unreachable.
    """
    backend = SSHBackend.for_workstation(workstation)
    try:
        ended = await backend.end_attempt_or_raise(attempt_id)
        if ended:
            await asyncio.sleep(0.5)  # the recorders write their last read when tmux closes their pipes
        for number, dest in recordings:
            await backend.pull_recording(attempt_id, number, dest)
        # Pulled whole: the workstation's copy goes, so nothing of it is ever pulled twice.
        await backend._run(f'rm -rf "{remote_spool(attempt_id)}"')
        if ended:
            log.info("attempt %s: ended its tmux sessions on %s", attempt_id, backend.host)
        return ended
    finally:
        await backend.disconnect()
