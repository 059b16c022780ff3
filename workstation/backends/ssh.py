"""The `ssh` backend: a remote workstation over asyncssh (host key checked), through its gate.

The site's key opens one thing on a workstation: `rebench-gate` (workstation/gate.py), the forced
command of that key's line in root's authorized_keys there. Each method here is one of the gate's
verbs; the gate does it with the local backend's own functions on that host's layout, so an SSH
workstation's attempts have what a local one's have (their own users, the sandbox, holders outside
it, experts' SSH, uploads) in the very workspaces its agent prepares and scores. A tab reaches its
terminal's holder through `rebench-gate connect` on an SSH channel without a PTY, which carries the
holder's frames as they are; the holders record there and the site pulls whole lines.
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

from workstation import gate, holder
from workstation.backends import Backend, BackendError, SandboxRequest, Shell, ShellSpec

log = logging.getLogger(__name__)

# One connection per (host, port, user) and event loop: tabs and reconnects share it.
_connections: dict[tuple[Any, ...], tuple[asyncio.AbstractEventLoop, asyncssh.SSHClientConnection]] = {}
_locks: dict[tuple[Any, ...], tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}
# A shell channel's SSH window: the most of a workstation's output in flight to us (see open()).
SSH_WINDOW_BYTES = 128 * 1024
GATE = gate.NAME
DEFAULT_USER = "root"  # the gate makes users and cgroups: its key is root's, limited to the gate
_SESSION_FILE = re.compile(r"session-(\d+)\.out")


def _sandbox_json(request: SandboxRequest) -> dict[str, Any]:
    return {key: value for key, value in asdict(request).items() if key != "attempt_id"}


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
            _connections[key] = (asyncio.get_running_loop(), conn)
            return conn

    async def disconnect(self) -> None:
        cached = _connections.get(self._key)
        if cached is not None and cached[0] is asyncio.get_running_loop():
            _connections.pop(self._key, None)
            cached[1].close()
            with contextlib.suppress(asyncssh.Error, OSError):
                await cached[1].wait_closed()

    async def _gate(self, *words: object, input: str | bytes = b"") -> asyncssh.SSHCompletedProcess:
        """Run a verb of the workstation's gate; its completed process (stdout as bytes)."""
        conn = await self._connect()
        command = holder.shell_join([GATE, *(str(word) for word in words)])
        data = input.encode() if isinstance(input, str) else input
        try:
            return await conn.run(command, input=data, check=False, encoding=None)
        except (asyncssh.Error, OSError) as exc:
            raise self._broken(exc) from exc

    def _broken(self, exc: Exception) -> BackendError:
        """The connection failed: it is not reused, and the error says so."""
        _connections.pop(self._key, None)
        return BackendError(f"The connection to {self.host} failed: {exc}.")

    def _refused(self, result: asyncssh.SSHCompletedProcess) -> BackendError:
        reason = self._text(result.stderr).strip()[-800:] or f"exit status {result.exit_status}"
        return BackendError(f"The workstation {self.host} refused: {reason}")

    @staticmethod
    def _text(data: object) -> str:
        return data.decode(errors="replace") if isinstance(data, bytes) else str(data or "")

    async def _answer(self, *words: object, input: str | bytes = b"") -> Any:
        result = await self._gate(*words, input=input)
        if result.exit_status != 0:
            raise self._refused(result)
        try:
            return json.loads(self._text(result.stdout))
        except ValueError as exc:
            raise BackendError(f"The workstation {self.host} answered {self._text(result.stdout)[:200]!r}.") from exc

    async def session_exists(self, spec: ShellSpec) -> bool:
        return (await self._gate("exists", spec.attempt_id, spec.number)).exit_status == 0

    async def open(self, spec: ShellSpec) -> Shell:
        request = {
            "sandbox": _sandbox_json(spec.sandbox),
            "control": spec.control,
            "token": spec.token,
            "cols": spec.cols,
            "rows": spec.rows,
            "readonly": spec.readonly,
            "record": bool(spec.spool_output),
        }
        await self._answer("open", spec.attempt_id, spec.number, input=json.dumps(request) + "\n")
        conn = await self._connect()
        try:
            # No PTY on the channel: it carries the holder's frames, byte for byte.
            process = await conn.create_process(
                holder.shell_join([GATE, "connect", str(spec.attempt_id), str(spec.number)]),
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

    async def pull_recording(self, attempt_id: int, number: int, dest: Path) -> int:
        """Whole lines only: a line the recorder is writing now comes with the next pull."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        offset = dest.stat().st_size if dest.exists() else 0
        result = await self._gate("pull", attempt_id, number, offset)
        data = result.stdout if result.exit_status == 0 and isinstance(result.stdout, bytes) else b""
        data = data[: data.rfind(b"\n") + 1]
        if data:
            with dest.open("ab") as f:
                f.write(data)
        return len(data)

    async def workspace_upload(self, request: SandboxRequest, path: str, data: bytes) -> None:
        header = json.dumps({"sandbox": _sandbox_json(request)}).encode() + b"\n"
        await self._answer("upload", request.attempt_id, path, input=header + data)

    async def workspace_download(self, request: SandboxRequest, path: str, dest: Path, *, max_bytes: int) -> str:
        conn = await self._connect()
        command = holder.shell_join([GATE, "download", str(request.attempt_id), path, str(max_bytes)])
        try:
            process = await conn.create_process(command, encoding=None)
            process.stdin.write(json.dumps({"sandbox": _sandbox_json(request)}).encode() + b"\n")
            process.stdin.write_eof()
            first = await process.stdout.readline()
            with dest.open("wb") as out:  # streamed: a download may be as large as ATTEMPT_DOWNLOAD_MAX_MB
                while chunk := await process.stdout.read(1 << 20):
                    out.write(chunk)
            said = await process.stderr.read()
            result = await process.wait()
        except (asyncssh.Error, OSError) as exc:
            raise self._broken(exc) from exc
        if result.exit_status != 0:
            raise BackendError(self._text(said).strip()[-800:] or "the download failed")
        try:
            return str(json.loads(first)["kind"])
        except (ValueError, KeyError, TypeError):
            raise BackendError(f"The workstation {self.host} answered {first[:200]!r}.") from None

    async def collect_ssh_recordings(self, attempt_id: int, dest: Callable[[int], Path]) -> list[int]:
        result = await self._gate("ssh-recordings", attempt_id)
        if result.exit_status != 0:
            raise self._refused(result)
        numbers = []
        data = result.stdout if isinstance(result.stdout, bytes) else b""
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
            for member in archive.getmembers():
                match = _SESSION_FILE.fullmatch(member.name)
                source = archive.extractfile(member) if member.isfile() else None
                if match is None or source is None:
                    continue  # nothing but session-N.out files, read as bytes: never a path of theirs
                with open(dest(int(match[1])), "ab") as target:
                    target.write(source.read())
                numbers.append(int(match[1]))
        return numbers

    async def sandbox_control(self, attempt_id: int, control: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = await self._answer("control", attempt_id, input=json.dumps(control) + "\n")
        return answer

    async def sandbox_status(self, attempt_id: int) -> dict[str, Any]:
        answer: dict[str, Any] = await self._answer("status", attempt_id)
        return answer

    async def end_attempt(self, attempt_id: int) -> bool:
        ended = bool((await self._answer("end", attempt_id)).get("ended"))
        if ended:
            log.info("attempt %s: ended its terminals and sandbox on %s", attempt_id, self.host)
        return ended

    async def collect_recordings(self, attempt_id: int, recordings: list[tuple[int, Path]]) -> None:
        for number, dest in recordings:
            await self.pull_recording(attempt_id, number, dest)
        # Pulled whole: the workstation's copy goes, so nothing of it is ever pulled twice.
        await self._answer("drop-recordings", attempt_id)
