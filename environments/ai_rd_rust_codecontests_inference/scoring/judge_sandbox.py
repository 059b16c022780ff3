"""The sandbox judge.py runs each untrusted step in: rlimits, its own session, `nobody` as root, Landlock.

Every untrusted step (rustc on the answer, the answer's program) runs in its own session in a fresh
temporary directory with CPU-time, address-space, file-size and open-file limits and a wall-clock
timeout that kills the whole process group. The program itself also gets RLIMIT_NPROC = 0, so a
fork or a thread fails at once, and its stdout goes to a file under RLIMIT_FSIZE, so printing or
writing too much ends it with SIGXFSZ. Where the kernel has Landlock, the program may write only in
its own test's folder, open no TCP connection and signal nothing outside itself. When the judge
runs as root both steps run as `nobody` instead (root ignores RLIMIT_NPROC).

It sits beside judge.py wherever the judge runs (the scorer's folder, the harness's inputs, the
expert's workspace), which is how judge.py finds it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NOBODY = 65534


@dataclass
class _Run:
    returncode: int | None
    timed_out: bool
    seconds: float
    stderr: str

    @property
    def ended_badly(self) -> bool:
        """Failed by itself, whatever it printed: no output needs comparing."""
        return self.timed_out or self.returncode != 0


# --- Landlock: an answer writes only in its own test's folder ----------------------------------------
# The numbers of <linux/landlock.h>; the system calls are 444-446 on every architecture.
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_FS_WRITE_FILE, _FS_REMOVE_DIR, _FS_REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
_FS_MAKE = sum(1 << bit for bit in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_MAKE_REG_AND_DIR = (1 << 7) | (1 << 8)


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock version (0: none, or not enabled at boot)."""
    try:
        version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def _write_only_beneath(folder: Path) -> int | None:
    """A Landlock ruleset (its fd) that allows writing files only beneath `folder`, no TCP, no signals
    or abstract sockets outside; None where the kernel has no Landlock."""
    abi = landlock_abi()
    if abi < 1:
        return None
    writes = _FS_WRITE_FILE | _FS_REMOVE_DIR | _FS_REMOVE_FILE | _FS_MAKE
    writes |= (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0) | (_FS_IOCTL_DEV if abi >= 5 else 0)
    attr = _RulesetAttr(
        handled_access_fs=writes,
        handled_access_net=(_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0,
        scoped=(_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0,
    )
    size = 8 if abi < 4 else 16 if abi < 6 else 24  # the struct as this ABI knows it
    libc = _libc()
    ruleset = libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    beneath = os.open(folder, os.O_PATH | os.O_CLOEXEC)
    try:
        allowed = (_FS_WRITE_FILE | _FS_REMOVE_FILE | _FS_REMOVE_DIR | _MAKE_REG_AND_DIR) & writes
        allowed |= _FS_TRUNCATE & writes
        rule = _PathBeneathAttr(allowed_access=allowed, parent_fd=beneath)
        if libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            os.close(ruleset)
            raise OSError(ctypes.get_errno(), "landlock_add_rule failed")
    finally:
        os.close(beneath)
    return int(ruleset)


def _restrict_self(ruleset: int) -> None:
    """Between fork and exec: no new privileges, then the ruleset for good (inherited by everything after)."""
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.syscall(_RESTRICT_SELF, ruleset, 0) != 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")


def _sandboxed(
    argv: list[str],
    *,
    cwd: Path,
    stdin_path: Path | None,
    stdout_path: Path,
    cpu_seconds: float,
    memory_bytes: int,
    file_bytes: int,
    open_files: int,
    processes: int | None,
    wall_seconds: float,
    env: dict[str, str],
    writable_only: Path | None = None,
) -> _Run:
    drop = os.geteuid() == 0
    ruleset = _write_only_beneath(writable_only) if writable_only is not None else None

    def setup() -> None:
        os.setsid()
        if drop:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        cpu = max(1, int(cpu_seconds + 0.999))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if processes is not None:
            # After the uid change: set before it, the kernel would count the change itself over the limit.
            resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
        if ruleset is not None:
            _restrict_self(ruleset)

    started = time.monotonic()
    stdin = stdin_path.open("rb") if stdin_path is not None else subprocess.DEVNULL
    try:
        with stdout_path.open("wb") as stdout, tempfile.TemporaryFile() as stderr:
            try:
                proc = subprocess.Popen(  # noqa: S603 - argv is rustc or the binary it just built
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=stdin,
                    stdout=stdout,
                    stderr=stderr,
                    preexec_fn=setup,
                    close_fds=True,
                )
            finally:
                if ruleset is not None:
                    os.close(ruleset)
            timed_out = False
            try:
                proc.wait(timeout=wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            stderr.seek(0)
            text = stderr.read(64 * 1024).decode("utf-8", "replace")
    finally:
        if not isinstance(stdin, int):  # the file opened above, not DEVNULL
            stdin.close()
    return _Run(proc.returncode, timed_out, time.monotonic() - started, text)


def workdir(parent: Path | None = None) -> Path:
    """A fresh private folder for one answer (the judge's user's: nobody's when we are root)."""
    return _workdir(parent)


def _workdir(parent: Path | None) -> Path:
    if os.geteuid() == 0:
        # Steps run as nobody, who must reach the folder: root's own TMPDIR may be private.
        parent = Path("/tmp")  # noqa: S108 - a fresh 0700 folder of nobody's, made by mkdtemp
    folder = Path(tempfile.mkdtemp(prefix="rust-judge-", dir=parent))
    if os.geteuid() == 0:
        os.chown(folder, NOBODY, NOBODY)
    os.chmod(folder, 0o700)
    return folder


def _chown_tree(path: Path) -> None:
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
