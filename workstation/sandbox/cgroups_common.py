"""What every cgroup version shares: the error, the limits, reading and writing cgroup files, and the
`Hierarchy` contract each version (cgroups_v1.py, cgroups_v2.py) fulfils.

Standard library only, like the whole sandbox package (it travels to SSH workstations).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass, field

CPU_PERIOD_US = 100_000
KILL_PASSES = 50


class CgroupError(Exception):
    """The cgroup can't be made or changed; the message says what the host lacks."""


@dataclass(frozen=True)
class Limits:
    memory_bytes: int | None = None
    pids_max: int | None = None
    cpus: tuple[int, ...] = ()  # cores the sandbox may run on (and sees); empty: all
    cpu_quota: float | None = None  # cores' worth of time per period
    devices: tuple[tuple[str, int, int], ...] = ()  # (c|b, major, minor) allowed besides the basics (v1)
    extra: dict[str, str] = field(default_factory=dict)


def _write(path: str, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def _remove_tree(directory: str) -> None:
    """rmdir a cgroup and its children, deepest first (a cgroup folder holds no files of its own to remove)."""
    for root, _dirs, _files in sorted(os.walk(directory), key=lambda w: -w[0].count("/")):
        for _ in range(50):
            try:
                os.rmdir(root)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                time.sleep(0.02)  # the last task is still exiting


class Hierarchy:
    """The cgroup operations the sandbox uses; one implementation per cgroup version."""

    version = 0

    def problems(self, parent: str) -> list[str]:
        raise NotImplementedError

    def create(self, path: str, limits: Limits | None = None) -> None:
        raise NotImplementedError

    def add(self, path: str, pid: int) -> None:
        raise NotImplementedError

    def procs(self, path: str) -> list[int]:
        raise NotImplementedError

    def set_frozen(self, path: str, frozen: bool) -> None:
        raise NotImplementedError

    def is_frozen(self, path: str) -> bool:
        raise NotImplementedError

    def oom_kills(self, path: str) -> int:
        raise NotImplementedError

    def kill(self, path: str) -> None:
        raise NotImplementedError

    def remove(self, path: str) -> None:
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def weigh(self, path: str, cores: int) -> None:
        """Give `path` (the parent of every sandbox) the CPU weight of `cores` processes, not one's.

        Siblings share CPU by weight: with the default, every attempt on a busy host together would
        get what one unsandboxed process gets.
        """
        raise NotImplementedError

    def _kill_loop(self, path: str) -> None:
        """SIGKILL every process until none is left (a fork during the kill is caught on the next pass)."""
        for _ in range(KILL_PASSES):
            pids = self.procs(path)
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        if self.procs(path):
            raise CgroupError(f"processes in {path} survived {KILL_PASSES} rounds of SIGKILL")
