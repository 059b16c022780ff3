"""The `local` backend: this machine. Shells run in the attempt's sandbox, each terminal held outside it by a holder."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

from workstation import files, holder, layout, policy, sandbox, ssh_access, users, workspaces
from workstation.backends import Backend, BackendError, SandboxRequest, Shell, ShellSpec
from workstation.sandbox import ssh_gate
from workstation.sandbox.state import unix_path
from workstation.tools import term_holder
from workstation.users import ShellUser

log = logging.getLogger(__name__)

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def system_python() -> str:
    """A python3 every user may run (the terminal user runs the holders and the attach client with it)."""
    return shutil.which("python3", path=SYSTEM_PATH) or "/usr/bin/python3"


def _as(user: ShellUser) -> dict[str, Any]:
    return {"user": user.uid, "group": user.gid, "extra_groups": []} if os.geteuid() == 0 else {}


def holder_env() -> dict[str, str]:
    return {"HOME": "/", "PATH": SYSTEM_PATH, "LANG": os.environ.get("LANG", "C.UTF-8"), "TERM": "xterm-256color"}


def prepare_workspace(attempt_id: int, user: ShellUser) -> Path:
    """The attempt's workspace folder, `user`'s alone."""
    return workspaces.make_folder(layout.workspace(attempt_id), uid=user.uid, gid=user.gid)


def give_file(path: str, user: ShellUser, mode: int = 0o600) -> None:
    """Make `path` (a file in a folder of ours) belong to `user`, never following a link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, mode)
    try:
        if os.geteuid() == 0:
            os.fchown(fd, user.uid, user.gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def sandbox_up(request: SandboxRequest, control: dict[str, Any] | None = None) -> sandbox.Policy:
    """Start the attempt's sandbox unless it runs (users, workspace and tools made first); apply `control`."""
    try:
        found = policy.local_policy(request)
        layout.install_tools()
        prepare_workspace(request.attempt_id, users.ShellUser("", found.uid, found.gid, ""))
        command, env = policy.launcher()
        sandbox.ensure(found, command, env=env)
        if control:
            sandbox_control_sync(request.attempt_id, control)
    except (users.UnixUserError, sandbox.SandboxError, sandbox.cgroups.CgroupError) as exc:
        raise BackendError(f"The attempt's sandbox could not start: {exc}") from exc
    return found


def holder_socket(attempt_id: int, number: int) -> Path:
    return layout.terminals_dir(attempt_id) / holder.socket_name(number)


def terminal_user_folder(folder: Path, user: ShellUser) -> Path:
    """`folder` the terminal user's alone (0700), in a parent anyone may cross but not list (0711)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.parent.chmod(0o711)
    return workspaces.make_folder(folder, uid=user.uid, gid=user.gid)


def _start_holder(spec: ShellSpec, found: sandbox.Policy, user: ShellUser) -> Path:
    """Start this terminal's holder (and its shell in the sandbox) unless it runs; its socket."""
    # The attempt's holder sockets: no shell and no other attempt connects.
    terminal_user_folder(layout.terminals_dir(spec.attempt_id), user)
    path = holder_socket(spec.attempt_id, spec.number)
    if spec.spool_output:
        give_file(spec.spool_output, user)
    python = system_python()
    argv = holder.start_argv(
        python=python,
        tool=str(layout.tools_dir() / holder.TOOL),
        socket=str(path),
        spool=spec.spool_output,
        cols=spec.cols,
        rows=spec.rows,
        replay_bytes=settings.TERMINAL_REPLAY_BYTES,
        attach=holder.attach_argv(
            python=python,
            spawner=str(Path(found.tools_dir) / sandbox.SPAWNER),
            spawn_socket=str(Path(found.state_dir) / sandbox.SPAWN_SOCKET),
            number=spec.number,
        ),
    )
    result = subprocess.run(  # noqa: S603 - our tool, with arguments we build
        argv, capture_output=True, check=False, timeout=15, env=holder_env(), cwd="/", **_as(user)
    )
    if result.returncode != 0:
        raise BackendError(f"The terminal could not start: {result.stderr.decode(errors='replace').strip()[-500:]}")
    return path


def terminal_user() -> ShellUser:
    try:
        return users.tmux_user()
    except users.UnixUserError as exc:
        raise BackendError(f"The terminal user can't be used: {exc}") from None


async def _connect(path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    try:
        with unix_path(str(path)) as address:  # a deep data folder: through its folder's descriptor
            return await asyncio.open_unix_connection(address)
    except (FileNotFoundError, ConnectionRefusedError):
        return None
    except OSError as exc:
        raise BackendError(f"Could not reach the terminal: {exc}") from exc


def terminal_prepare(spec: ShellSpec) -> Path:
    """The attempt's sandbox up (control applied, the relay's token set) and terminal `number`'s holder
    started unless it runs (a read-only spec starts nothing); the holder's socket."""
    found = sandbox_up(spec.sandbox, spec.control)
    user = terminal_user()
    if spec.token:
        sandbox.set_token(found.state_dir, spec.token, uid=user.uid)
    if spec.readonly:
        return holder_socket(spec.attempt_id, spec.number)
    return _start_holder(spec, found, user)


def holder_answers(attempt_id: int, number: int) -> bool:
    """Whether terminal `number`'s holder takes a connection now."""
    path = holder_socket(attempt_id, number)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            with unix_path(str(path)) as address:
                probe.connect(address)
        except OSError:
            return False
    return True


class LocalBackend(Backend):
    async def session_exists(self, spec: ShellSpec) -> bool:
        connection = await _connect(holder_socket(spec.attempt_id, spec.number))
        if connection is None:
            return False
        connection[1].close()
        return True

    async def open(self, spec: ShellSpec) -> Shell:
        # Users, the sandbox and the holder are slow (useradd, bubblewrap): in a thread, off the event loop.
        path = await asyncio.to_thread(terminal_prepare, spec)
        connection = await _connect(path)
        if connection is None:
            if spec.readonly:
                return holder.EndedShell()  # nobody has opened this terminal: nothing to watch
            raise BackendError("The terminal stopped as it started; reopen it.")
        reader, writer = connection
        writer.write(holder.hello(readonly=spec.readonly, cols=spec.cols, rows=spec.rows))

        async def close() -> None:
            writer.close()
            await writer.wait_closed()

        return holder.HolderShell(reader, writer, close)

    async def pull_recording(self, attempt_id: int, number: int, dest: Path) -> int:
        return 0  # the holder writes this machine's spool itself

    async def collect_recordings(self, attempt_id: int, recordings: list[tuple[int, Path]]) -> None:
        return None  # already here

    async def workspace_upload(self, request: SandboxRequest, path: str, data: bytes) -> None:
        await asyncio.to_thread(transfer, files.upload, request, path, data)

    async def workspace_download(self, request: SandboxRequest, path: str, dest: Path, *, max_bytes: int) -> str:
        return str(await asyncio.to_thread(transfer, files.download, request, path, dest, max_bytes=max_bytes))

    async def collect_ssh_recordings(self, attempt_id: int, dest: Callable[[int], Path]) -> list[int]:
        return await asyncio.to_thread(collect_ssh_recordings_sync, attempt_id, dest)

    async def sandbox_control(self, attempt_id: int, control: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(sandbox_control_sync, attempt_id, control)

    async def sandbox_status(self, attempt_id: int) -> dict[str, Any]:
        return await asyncio.to_thread(sandbox.status, str(layout.sandbox_dir(attempt_id)))

    async def end_attempt(self, attempt_id: int) -> bool:
        return await asyncio.to_thread(end_attempt_sync, attempt_id)

    async def disconnect(self) -> None:
        return None


def _stop_holders(attempt_id: int) -> bool:
    """End the attempt's terminal holders (their shells hang up); True if any ran."""
    folder = layout.terminals_dir(attempt_id)
    ended = term_holder.signal_holders(str(folder))
    shutil.rmtree(folder, ignore_errors=True)
    return ended > 0


def transfer(function: Callable[..., object], request: SandboxRequest, *args: Any, **kwargs: Any) -> object:
    try:
        return function(policy.local_policy(request), *args, **kwargs)
    except files.TransferError as exc:
        raise BackendError(str(exc)) from None
    except (users.UnixUserError, sandbox.SandboxError, sandbox.cgroups.CgroupError) as exc:
        raise BackendError(f"The attempt's sandbox could not start: {exc}") from exc


def collect_ssh_recordings_sync(attempt_id: int, dest: Callable[[int], Path]) -> list[int]:
    """Each SSH session's output spool (written by its holder, the terminal user's) copied to `dest(number)`."""
    folder = layout.sandbox_dir(attempt_id) / ssh_gate.SSH_DIR
    numbers = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for name in sorted(os.listdir(folder)):
            match = re.fullmatch(r"session-(\d+)\.out", name)
            if match is None:
                continue
            fd = os.open(folder / name, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as source, open(dest(int(match[1])), "ab") as target:
                shutil.copyfileobj(source, target)
            numbers.append(int(match[1]))
    return numbers


def sandbox_control_sync(attempt_id: int, control: dict[str, Any]) -> dict[str, Any]:
    """The server's word on the attempt: the keeper's control file, and the SSH keys it carries (or their removal)."""
    keys = {"ssh_keys": control["ssh_keys"]} if "ssh_keys" in control else {}
    rest = {key: value for key, value in control.items() if key != "ssh_keys"}
    merged = sandbox.control(str(layout.sandbox_dir(attempt_id)), rest)
    if merged.get("version") == rest.get("version"):  # an older word that arrived late changes no keys either
        ssh_access.apply_control(attempt_id, {**merged, **keys})
    return merged


def end_attempt_sync(attempt_id: int) -> bool:
    """End the attempt's terminal holders and stop its sandbox's processes; True if either ran. Idempotent."""
    ssh_access.remove(attempt_id)  # first: no new SSH session while the rest ends
    ended = _stop_holders(attempt_id)
    stopped = sandbox.stop(str(layout.sandbox_dir(attempt_id)))
    if ended or stopped:
        log.info("attempt %s: ended its terminals and sandbox", attempt_id)
    return ended or stopped
