"""The `ssh` backend: a remote workstation over asyncssh (host key checked), sandboxed there as here.

The workstation runs the same sandbox package as this machine (copied to `~/.rebench/lib/rebench_sandbox`)
with the same tools (`~/.rebench/bin`): its keeper, spawner and relay run as the SSH user; the
attempt's shells run in a sandbox of its own (namespaces, and a cgroup where the host delegates one
to that user). Each terminal's holder (its PTY and recording) runs as the SSH user outside the
sandbox; a tab reaches it through `term_holder.py connect` on an SSH channel without a PTY, which
carries the holder's frames as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import tarfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import asyncssh
from django.conf import settings

from workstation import holder, layout, sandbox
from workstation.backends import Backend, BackendError, SandboxRequest, Shell, ShellSpec

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
        """Where the holders record each terminal (one folder per attempt: two sites sharing a login never mix)."""
        return f"{self.root}/recordings/{layout.sandbox_name(attempt_id)}"

    def terminals(self, attempt_id: int) -> str:
        return f"{self.root}/terminals/{layout.sandbox_name(attempt_id)}"

    def holder_socket(self, attempt_id: int, number: int) -> str:
        return f"{self.terminals(attempt_id)}/{holder.socket_name(number)}"

    @property
    def tool(self) -> str:
        return f"{self.bin}/{holder.TOOL}"

    def cli(self, args: list[str]) -> str:
        return f"PYTHONPATH={holder.shell_join([self.lib])} python3 -m rebench_sandbox {holder.shell_join(args)}"


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
        remote = await self._remote()
        socket = remote.holder_socket(spec.attempt_id, spec.number)
        probe = holder.connect_argv(python="python3", tool=remote.tool, socket=socket)
        return (await self._run(f"{holder.shell_join(probe)} </dev/null >/dev/null 2>&1")).exit_status == 0

    async def open(self, spec: ShellSpec) -> Shell:
        conn = await self._connect()
        check = await self._run("command -v bwrap >/dev/null")
        if check.exit_status != 0:
            raise BackendError(f"{self.host} lacks bubblewrap: the terminal needs it (apt-get install bubblewrap).")
        remote = await self._remote()
        await self._sandbox(
            ["up"],
            {"policy": asdict(remote_policy(spec.sandbox, remote)), "token": spec.token, "control": spec.control},
        )
        socket = remote.holder_socket(spec.attempt_id, spec.number)
        if not spec.readonly:
            await self._start_holder(remote, spec, socket)
        connect = holder.shell_join(holder.connect_argv(python="python3", tool=remote.tool, socket=socket))
        try:
            # No PTY on the channel: it carries the holder's frames, byte for byte.
            process = await conn.create_process(
                f"exec {connect} 2>/dev/null",
                encoding=None,
                # The most output in flight from the workstation when the browser falls behind (asyncssh's
                # default is 2 MB): what Ctrl-C's prompt would queue behind. The holder then blocks the shell.
                window=SSH_WINDOW_BYTES,
            )
        except (asyncssh.Error, OSError) as exc:
            _connections.pop(self._key, None)
            raise BackendError(f"The workstation {self.host} refused a shell: {exc}.") from exc
        process.stdin.write(holder.hello(readonly=spec.readonly, cols=spec.cols, rows=spec.rows))

        async def close() -> None:
            process.close()  # the holder sees the connection go; the shell lives on
            await process.wait_closed()

        return holder.HolderShell(process.stdout, process.stdin, close)

    async def _start_holder(self, remote: Remote, spec: ShellSpec, socket: str) -> None:
        spool = remote.spool(spec.attempt_id)
        folder = remote.terminals(spec.attempt_id)
        start = holder.start_argv(
            python="python3",
            tool=remote.tool,
            socket=socket,
            spool=f"{spool}/terminal-{spec.number}.jsonl",
            cols=spec.cols,
            rows=spec.rows,
            replay_bytes=settings.TERMINAL_REPLAY_BYTES,
            attach=holder.attach_argv(
                python="python3",
                spawner=f"{remote.bin}/{sandbox.SPAWNER}",
                spawn_socket=f"{remote.state_dir(spec.attempt_id)}/{sandbox.SPAWN_SOCKET}",
                number=spec.number,
            ),
        )
        folders = holder.shell_join([spool, folder])
        parents = holder.shell_join([os.path.dirname(spool), os.path.dirname(folder), folder])
        result = await self._run(f"mkdir -p {folders} && chmod 700 {parents} && {holder.shell_join(start)} >/dev/null")
        if result.exit_status != 0:
            raise BackendError(f"The terminal could not start on {self.host}: {str(result.stderr).strip()[-500:]}")

    async def pull_recording(self, attempt_id: int, number: int, dest: Path) -> int:
        """Whole lines only: a line the recorder is writing now comes with the next pull."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        offset = dest.stat().st_size if dest.exists() else 0
        spool = (await self._remote()).spool(attempt_id)
        path = holder.shell_join([f"{spool}/terminal-{number}.jsonl"])
        result = await self._run(f"tail -c +{offset + 1} {path} 2>/dev/null", binary=True)
        data = result.stdout or b""
        assert isinstance(data, bytes)  # binary: not decoded
        data = data[: data.rfind(b"\n") + 1]
        if data:
            with dest.open("ab") as f:
                f.write(data)
        return len(data)

    async def workspace_upload(self, request: SandboxRequest, path: str, data: bytes) -> None:
        raise BackendError("Uploads reach local workstations only for now.")

    async def workspace_download(self, request: SandboxRequest, path: str, dest: Path, *, max_bytes: int) -> str:
        raise BackendError("Downloads reach local workstations only for now.")

    async def collect_ssh_recordings(self, attempt_id: int, dest: Callable[[int], Path]) -> list[int]:
        return []  # experts' SSH access needs per-attempt users, which only a root workstation (local) has

    async def sandbox_control(self, attempt_id: int, control: dict[str, Any]) -> dict[str, Any]:
        return await self._sandbox(["control", (await self._remote()).state_dir(attempt_id)], control)

    async def sandbox_status(self, attempt_id: int) -> dict[str, Any]:
        return await self._sandbox(["status", (await self._remote()).state_dir(attempt_id)])

    async def end_attempt(self, attempt_id: int) -> bool:
        remote = await self._remote()
        folder = remote.terminals(attempt_id)
        stop = holder.shell_join(holder.stop_argv(python="python3", tool=remote.tool, directory=folder))
        result = await self._run(
            f"echo terminals-ended=$({stop} 2>/dev/null); rm -rf {holder.shell_join([folder])}; "
            f"{remote.cli(['stop', remote.state_dir(attempt_id)])}"
        )
        if result.exit_status != 0:
            raise BackendError(
                f"Could not stop the attempt's sandbox on {self.host}: {str(result.stderr).strip()[-500:]}"
            )
        output = str(result.stdout)
        holders = re.search(r"terminals-ended=(\d+)", output)
        ended = bool(holders and int(holders.group(1))) or '"stopped": true' in output
        if ended:
            log.info("attempt %s: ended its terminals and sandbox on %s", attempt_id, self.host)
        return ended

    async def collect_recordings(self, attempt_id: int, recordings: list[tuple[int, Path]]) -> None:
        for number, dest in recordings:
            await self.pull_recording(attempt_id, number, dest)
        # Pulled whole: the workstation's copy goes, so nothing of it is ever pulled twice.
        spool = (await self._remote()).spool(attempt_id)
        await self._run(f"rm -rf {holder.shell_join([spool])}")
