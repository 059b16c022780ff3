"""The state folder's plumbing: private folders, Unix socket addresses, atomic writes, JSON reads, locks
and the keeper's pid."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from typing import Any

from .policy import KEEPER_PID, LOCK_SECONDS, SandboxError


def _private_dir(path: str, mode: int = 0o711) -> None:
    os.makedirs(path, exist_ok=True)
    info = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path):
        raise SandboxError(f"{path} is not a folder")
    if os.geteuid() == 0 and info.st_uid != 0:
        os.chown(path, 0, 0, follow_symlinks=False)
    os.chmod(path, mode)


def unix_address(path: str, directory_fd: int) -> str:
    """An address for `path` that fits a Unix socket's 107 bytes however deep the data folder is: the
    socket's name under `/proc/self/fd/N`, N an open descriptor of its folder."""
    if len(os.fsencode(path)) <= 100:
        return path
    return f"/proc/self/fd/{directory_fd}/{os.path.basename(path)}"


@contextlib.contextmanager
def unix_path(path: str) -> Iterator[str]:
    """unix_address(path) with its folder held open for as long as the address is in use (bind, connect)."""
    fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY)
    try:
        yield unix_address(path, fd)
    finally:
        os.close(fd)


def write_file(directory: str, name: str, data: bytes, *, mode: int = 0o600, uid: int = -1, gid: int = -1) -> None:
    """Replace `directory/name` atomically, never following a link (the folder is ours, the name fixed)."""
    fd_dir = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        temporary = f".{name}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=fd_dir)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=fd_dir)
        try:
            os.write(fd, data)
            os.fchmod(fd, mode)
            if os.geteuid() == 0 and (uid != -1 or gid != -1):
                os.fchown(fd, uid, gid)
        finally:
            os.close(fd)
        os.rename(temporary, name, src_dir_fd=fd_dir, dst_dir_fd=fd_dir)
    finally:
        os.close(fd_dir)


def read_json(path: str) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError), open(path) as handle:
        data = json.load(handle)
        return data if isinstance(data, dict) else {}
    return {}


@contextlib.contextmanager
def locked(path: str, *, timeout: float) -> Iterator[None]:
    """An exclusive lock on `path` (a file in a folder of ours), waited for at most `timeout` s: TimeoutError after."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another process has held {path} for {timeout:g} s") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(state_dir: str, timeout: float = LOCK_SECONDS) -> Iterator[None]:
    """One starter at a time per attempt (the web server and the worker may both start it); never forever."""
    try:
        with locked(os.path.join(state_dir, ".lock"), timeout=timeout):
            yield
    except TimeoutError as exc:
        raise SandboxError(str(exc)) from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    return True


def keeper_pid(state_dir: str) -> int | None:
    with contextlib.suppress(OSError, ValueError), open(os.path.join(state_dir, KEEPER_PID)) as handle:
        pid = int(handle.read().strip())
        if pid > 0 and _alive(pid):
            return pid
    return None
