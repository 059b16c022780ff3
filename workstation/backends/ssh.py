"""The `ssh` backend: a remote workstation over asyncssh (host key checked), sandboxed there as here.

The workstation runs the same sandbox package as this machine (copied to `~/.rebench/lib/rebench_sandbox`)
with the same tools (`~/.rebench/bin`): its keeper, spawner and relay run as the SSH user; the
attempt's shells run in a sandbox of its own (namespaces, and a cgroup where the host delegates one
to that user). tmux and the pane recorder run as the SSH user outside the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import tarfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import asyncssh
from django.conf import settings

from workstation import layout, sandbox, tmux
from workstation.backends import Backend, BackendError, SandboxRequest, Shell, ShellSpec
from workstation.backends.local import READ_CHUNK

log = logging.getLogger(__name__)

# One connection per (host, port, user) and event loop: tabs and reconnects share it.
_connections: dict[tuple[Any, ...], tuple[asyncio.AbstractEventLoop, asyncssh.SSHClientConnection]] = {}
_locks: dict[tuple[Any, ...], tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}
# A shell channel's SSH window: the most of a workstation's output in flight to us (see open()).
SSH_WINDOW_BYTES = 128 * 1024
_homes: dict[tuple[Any, ...], str] = {}
# Relative to the SSH user's home on the workstation.
REMOTE = ".rebench"
REMOTE_WORKSPACES = "rebench-workspaces"


class Remote:
    """Where things are on one workstation, under its SSH user's home."""

    def __init__(self, home: str) -> None:
        self.home = home.rstrip("/")
        self.root = f"{self.home}/{REMOTE}"
        self.bin = f"{self.root}/bin"
        self.lib = f"{self.root}/lib"

    def state_dir(self, attempt_id: int) -> str:
        return f"{self.root}/sandboxes/{layout.sandbox_name(attempt_id)}"

    def workspace(self, attempt_id: int) -> str:
        """Named as the attempt's sandbox is: two sites sharing one login never share a workspace."""
        return f"{self.home}/{REMOTE_WORKSPACES}/{layout.sandbox_name(attempt_id)}"

    def spool(self, attempt_id: int) -> str:
        """Where tmux records each pane (one folder per tmux server: two sites sharing a login never mix)."""
        return f"{self.root}/recordings/{layout.sandbox_name(attempt_id)}"

    def cli(self, args: list[str]) -> str:
        return f"PYTHONPATH={tmux.shell_join([self.lib])} python3 -m rebench_sandbox {tmux.shell_join(args)}"


def _tools_archive() -> bytes:
    """The sandbox package and the tools, as a tar for one `tar x` on the workstation."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for source in sorted(layout.SANDBOX_PACKAGE.glob("*.py")):
            archive.add(source, arcname=f"lib/rebench_sandbox/{source.name}")
        for name, source in layout.TOOLS.items():
            info = archive.gettarinfo(str(source), arcname=f"bin/{name}")
            info.mode = 0o755
            with source.open("rb") as handle:
                archive.addfile(info, handle)
    return buffer.getvalue()


def remote_policy(request: SandboxRequest, remote: Remote) -> sandbox.Policy:
    """The sandbox policy of `request` on an SSH workstation: the SSH user's own ids (resolved there) and paths."""
    return sandbox.Policy(  # noqa: S604 - `shell` is the login shell inside the sandbox, not subprocess's flag
        name=layout.sandbox_name(request.attempt_id),
        attempt_id=request.attempt_id,
        state_dir=remote.state_dir(request.attempt_id),
        workspace=remote.workspace(request.attempt_id),
        tools_dir=remote.bin,
        uid=-1,
        gid=-1,
        isolate=True,
        disable_userns=True,
        cgroups=True,
        cgroup_version=settings.SANDBOX_CGROUP_VERSION,
        cgroup_parent=settings.SANDBOX_SSH_CGROUP_PARENT,
        memory_bytes=int(request.memory_gb * 1024**3) if request.memory_gb else 0,
        pids_max=settings.SANDBOX_PIDS_MAX,
        cpu_quota=float(request.cpus or 0),
        gpus=list(request.gpus),
        network=request.network,
        bridges=[[port, path] for port, path in request.bridges],
        python="/usr/bin/python3",
        shell="/bin/bash",
        api_url=settings.TERMINAL_API_URL,
        api_prefix=f"/attempts/{request.attempt_id}/",
        hostname=f"attempt-{request.attempt_id}",
    )


class SSHShell(Shell):
    def __init__(self, process: asyncssh.SSHClientProcess[bytes]) -> None:
        self.process = process
        self._closed = False

    async def read(self) -> bytes:
        try:
            data = await self.process.stdout.read(READ_CHUNK)
        except (asyncssh.Error, OSError, asyncio.IncompleteReadError):
            return b""
        return data or b""

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


class SSHBackend(Backend):
    def __init__(self, *, host: str, port: int, username: str) -> None:
        self.host = host
        self.port = port
        self.username = username

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
            _homes[key] = await self._install_tools(conn)
            _connections[key] = (asyncio.get_running_loop(), conn)
            return conn

    async def _install_tools(self, conn: asyncssh.SSHClientConnection) -> str:
        """Put the sandbox package and the tools on the workstation (Python stdlib only, so any python3 runs them).

        Returns the SSH user's home there, where everything of ours lives.
        """
        folder = f'"$HOME/{REMOTE}"'
        command = f'mkdir -p {folder} && chmod 700 {folder} && tar -x -C {folder} -f - && printf %s "$HOME"'
        result = await conn.run(command, input=_tools_archive(), check=False, encoding=None)
        if result.exit_status != 0 or not result.stdout:
            raise BackendError(f"Could not install the sandbox tools on {self.host}: {result.stderr!r}")
        assert isinstance(result.stdout, bytes)  # encoding=None
        return result.stdout.decode()

    async def _remote(self) -> Remote:
        await self._connect()
        return Remote(_homes[self._key])

    async def disconnect(self) -> None:
        cached = _connections.get(self._key)
        if cached is not None and cached[0] is asyncio.get_running_loop():
            _connections.pop(self._key, None)
            cached[1].close()
            with contextlib.suppress(asyncssh.Error, OSError):
                await cached[1].wait_closed()

    async def _run(
        self, command: str, *, input: str | bytes | None = None, binary: bool = False
    ) -> asyncssh.SSHCompletedProcess:
        conn = await self._connect()
        try:
            return await conn.run(command, input=input, check=False, encoding=None if binary else "utf-8")
        except (asyncssh.Error, OSError) as exc:
            _connections.pop(self._key, None)  # a broken connection is not reused
            raise BackendError(f"The connection to {self.host} failed: {exc}.") from exc

    async def _sandbox(self, args: list[str], payload: dict[str, Any] | None = None) -> dict[str, Any]:
        remote = await self._remote()
        result = await self._run(remote.cli(args), input=json.dumps(payload) if payload is not None else "")
        if result.exit_status != 0:
            raise BackendError(f"The sandbox on {self.host} refused: {str(result.stderr).strip()[-800:]}")
        try:
            answer: dict[str, Any] = json.loads(str(result.stdout))
            return answer
        except ValueError as exc:
            raise BackendError(f"The sandbox on {self.host} answered {str(result.stdout)[:200]!r}.") from exc

    async def session_exists(self, spec: ShellSpec) -> bool:
        argv = tmux.has_session_argv(
            tmux="tmux",
            socket=layout.sandbox_name(spec.attempt_id),
            session=tmux.session_name(spec.attempt_id, spec.number),
        )
        return (await self._run(tmux.shell_join(argv))).exit_status == 0

    async def open(self, spec: ShellSpec) -> SSHShell:
        conn = await self._connect()
        check = await self._run("command -v tmux >/dev/null && command -v bwrap >/dev/null")
        if check.exit_status != 0:
            raise BackendError(
                f"{self.host} lacks tmux or bubblewrap: the terminal needs both (apt-get install tmux bubblewrap)."
            )
        remote = await self._remote()
        await self._sandbox(
            ["up"],
            {"policy": asdict(remote_policy(spec.sandbox, remote)), "token": spec.token, "control": spec.control},
        )
        socket_name = layout.sandbox_name(spec.attempt_id)
        session = tmux.session_name(spec.attempt_id, spec.number)
        attach = tmux.shell_join(
            tmux.attach_argv(tmux="tmux", socket=socket_name, session=session, readonly=spec.readonly)
        )
        if spec.readonly:
            command = f"exec {attach}"
        else:
            spool = remote.spool(spec.attempt_id)
            pane = tmux.attach_command(
                "python3",
                f"{remote.bin}/{sandbox.SPAWNER}",
                f"{remote.state_dir(spec.attempt_id)}/{sandbox.SPAWN_SOCKET}",
                spec.number,
            )
            record = self._record(remote, spec)
            create = tmux.create_argv(
                tmux="tmux",
                socket=socket_name,
                session=session,
                cols=spec.cols,
                rows=spec.rows,
                pane_command=pane,
                cwd="/",
                record=record,
            )
            command = (
                f"mkdir -p {tmux.shell_join([spool])} && chmod 700 {tmux.shell_join([os.path.dirname(spool)])} && "
                # An existing session is not an error: the create is skipped and the client attaches.
                f"{{ {tmux.shell_join(create)} 2>&1 | grep -v '^duplicate session' ; }} ; exec {attach}"
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

    def _record(self, remote: Remote, spec: ShellSpec) -> str:
        spool = f"{remote.spool(spec.attempt_id)}/terminal-{spec.number}.jsonl"
        return tmux.record_command("python3", f"{remote.bin}/rebench-record", spool)

    async def ensure_recording(self, spec: ShellSpec) -> bool:
        """Restart the pane's recorder on the workstation if it has stopped; True if it had to."""
        if spec.readonly:
            return False
        socket_name = layout.sandbox_name(spec.attempt_id)
        session = tmux.session_name(spec.attempt_id, spec.number)
        result = await self._run(tmux.shell_join(tmux.pane_pipe_argv(tmux="tmux", socket=socket_name, session=session)))
        if result.exit_status != 0 or str(result.stdout).strip() != "0":
            return False
        record = self._record(await self._remote(), spec)
        rearm = tmux.recorder_rearm_argv(tmux="tmux", socket=socket_name, session=session, record=record)
        return (await self._run(tmux.shell_join(rearm))).exit_status == 0

    async def pull_recording(self, attempt_id: int, number: int, dest: Path) -> int:
        """Whole lines only: a line the recorder is writing now comes with the next pull."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        offset = dest.stat().st_size if dest.exists() else 0
        spool = (await self._remote()).spool(attempt_id)
        path = tmux.shell_join([f"{spool}/terminal-{number}.jsonl"])
        result = await self._run(f"tail -c +{offset + 1} {path} 2>/dev/null", binary=True)
        data = result.stdout or b""
        assert isinstance(data, bytes)  # binary: not decoded
        data = data[: data.rfind(b"\n") + 1]
        if data:
            with dest.open("ab") as f:
                f.write(data)
        return len(data)

    async def sandbox_control(self, attempt_id: int, control: dict[str, Any]) -> dict[str, Any]:
        return await self._sandbox(["control", (await self._remote()).state_dir(attempt_id)], control)

    async def sandbox_status(self, attempt_id: int) -> dict[str, Any]:
        return await self._sandbox(["status", (await self._remote()).state_dir(attempt_id)])

    async def end_attempt(self, attempt_id: int) -> bool:
        remote = await self._remote()
        kill = tmux.shell_join(tmux.kill_argv(tmux="tmux", socket=layout.sandbox_name(attempt_id)))
        result = await self._run(
            f"{kill} >/dev/null 2>&1 && echo tmux-ended; {remote.cli(['stop', remote.state_dir(attempt_id)])}"
        )
        if result.exit_status != 0:
            raise BackendError(
                f"Could not stop the attempt's sandbox on {self.host}: {str(result.stderr).strip()[-500:]}"
            )
        ended = "tmux-ended" in str(result.stdout) or '"stopped": true' in str(result.stdout)
        if ended:
            log.info("attempt %s: ended its tmux server and sandbox on %s", attempt_id, self.host)
        return ended

    async def collect_recordings(self, attempt_id: int, recordings: list[tuple[int, Path]]) -> None:
        for number, dest in recordings:
            await self.pull_recording(attempt_id, number, dest)
        # Pulled whole: the workstation's copy goes, so nothing of it is ever pulled twice.
        spool = (await self._remote()).spool(attempt_id)
        await self._run(f"rm -rf {tmux.shell_join([spool])}")
