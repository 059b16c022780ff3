"""The workstation backend contract: what the server asks of an attempt's machine, implemented whole by each backend.

`local` is this machine; `ssh` is a remote GPU host reached with asyncssh. Callers hold a `Backend`
and never ask which one it is: both open terminals, hand their recordings back,
start, steer and stop the attempt's sandbox, and end the attempt.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class BackendError(Exception):
    """The shell or sandbox could not be reached or made; the message is shown to the user."""


@dataclass(frozen=True)
class SandboxRequest:
    """What the server knows about an attempt that its sandbox needs: plain data, no database rows."""

    attempt_id: int
    gpus: tuple[int, ...] = ()  # the host's GPU indices the reservation holds
    host_gpu_count: int = 0
    cpus: int = 0  # the environment's CPUs (0: no cap beyond the host's share)
    memory_gb: float = 0  # the environment's memory (0: the host's share)
    network: str = "none"  # "host": the Task Standard's full_internet permission
    # (port on the sandbox's loopback, Unix socket on the host): the environment's proxy or judge.
    bridges: tuple[tuple[int, str], ...] = ()
    # A port on the sandbox's loopback leading to the attempt's own API relay, for the environment's
    # model (OPENAI_BASE_URL in the shell); 0: none.
    model_port: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxRequest:
        """The request as JSON carried it (lists for tuples) as the dataclass again."""
        return cls(
            attempt_id=int(data["attempt_id"]),
            gpus=tuple(int(g) for g in data.get("gpus", ())),
            host_gpu_count=int(data.get("host_gpu_count", 0)),
            cpus=int(data.get("cpus", 0)),
            memory_gb=float(data.get("memory_gb", 0)),
            network=str(data.get("network", "none")),
            bridges=tuple((int(port), str(path)) for port, path in data.get("bridges", ())),
            model_port=int(data.get("model_port", 0)),
        )


@dataclass(frozen=True)
class ShellSpec:
    """What to open: terminal `number` of an attempt, its size, and whose it is."""

    attempt_id: int
    number: int
    sandbox: SandboxRequest
    cols: int = 80
    rows: int = 24
    readonly: bool = False
    # The `task` command's credential, handed to the sandbox's relay (never into the sandbox itself).
    token: str = ""
    # This server's spool file for the pane's output (trials.recording); "" when not recorded.
    spool_output: str = ""
    control: dict[str, Any] = field(default_factory=dict)


class Shell(abc.ABC):
    @abc.abstractmethod
    async def read(self) -> bytes:
        """The next output bytes (several reads coalesced); b"" when the shell is gone."""

    @abc.abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def resize(self, cols: int, rows: int) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None:
        """Detach: the terminal's holder (and everything running on its PTY) lives on."""


class Backend(abc.ABC):
    """One workstation as the server sees it. Every method may raise BackendError."""

    @abc.abstractmethod
    async def session_exists(self, spec: ShellSpec) -> bool: ...

    @abc.abstractmethod
    async def open(self, spec: ShellSpec) -> Shell:
        """Start the attempt's sandbox and this terminal's holder unless they run; attach to it."""

    @abc.abstractmethod
    async def pull_recording(self, attempt_id: int, number: int, dest: Path) -> int:
        """Append what the terminal holder recorded on the workstation since the last pull to `dest`; bytes added."""

    @abc.abstractmethod
    async def collect_recordings(self, attempt_id: int, recordings: list[tuple[int, Path]]) -> None:
        """After end_attempt: bring each pane's recorded output (terminal number, spool file) into our spool."""

    @abc.abstractmethod
    async def collect_ssh_recordings(self, attempt_id: int, dest: Callable[[int], Path]) -> list[int]:
        """After end_attempt: copy each SSH session's recorded output (asciicast `o` lines) to `dest(session)`;
        the sessions' numbers."""

    @abc.abstractmethod
    async def workspace_upload(self, request: SandboxRequest, path: str, data: bytes) -> None:
        """Write `data` at `path` (relative, checked by the caller) in the workspace, as the attempt's user inside."""

    @abc.abstractmethod
    async def workspace_download(self, request: SandboxRequest, path: str, dest: Path, *, max_bytes: int) -> str:
        """The workspace's file at `path` into `dest` ("file"), or its folder as a tar.gz ("folder"), read as the
        attempt's user in its sandbox; BackendError with the reason when refused or over `max_bytes`."""

    @abc.abstractmethod
    async def sandbox_control(self, attempt_id: int, control: dict[str, Any]) -> dict[str, Any]:
        """The server's latest pause/deadline/end: the workstation freezes or thaws at once, and enforces it after."""

    @abc.abstractmethod
    async def sandbox_status(self, attempt_id: int) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def end_attempt(self, attempt_id: int) -> bool:
        """End the attempt's terminal holders and stop its sandbox's processes (the workspace stays for scoring).

        True if anything ran. BackendError while the workstation can't be reached.
        """

    @abc.abstractmethod
    async def disconnect(self) -> None:
        """Drop cached connections of this event loop (a one-off task's loop ends after it)."""


def backend_for(kind: str, *, host: str = "", port: int = 22, user: str = "") -> Backend:
    """The backend for a workstation of this kind ("local" or "ssh")."""
    if kind == "ssh":
        from workstation.backends.ssh import DEFAULT_USER, SSHBackend

        return SSHBackend(host=host, port=port or 22, username=user or DEFAULT_USER)
    if kind == "local":
        from workstation.backends.local import LocalBackend

        return LocalBackend()
    raise BackendError(f"Unknown workstation backend {kind!r}.")
