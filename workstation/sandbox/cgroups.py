"""An attempt's share of the machine as a cgroup: caps on memory, processes and CPUs, freezing, killing (v1 and v2).

Standard library only: this file also runs on SSH workstations, copied there with the rest of the
sandbox package. A cgroup is named by a path relative to the hierarchy's root (`rebench/<name>`);
on cgroup v1 the same path exists once per controller, on v2 once.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass, field

ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuset", "freezer", "devices")
# What a sandbox can't do without: caps on memory and processes, and freezing.
V1_REQUIRED = ("memory", "pids", "freezer")
V2_WANTED = ("memory", "pids", "cpu", "cpuset")
V2_REQUIRED = ("memory", "pids")
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


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fstype, super options) of every cgroup mount of this mount namespace."""
    found = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            fields, rest = left.split(), right.split()
            if len(fields) < 5 or len(rest) < 3 or rest[0] not in ("cgroup", "cgroup2"):
                continue
            found.append((fields[4], rest[0], set(rest[2].split(","))))
    return found


# Basic devices every sandbox needs (v1 device controller): null, zero, full, random, urandom,
# tty, ptmx and the pseudo-terminals.
BASIC_DEVICES = (
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
)


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


class V1(Hierarchy):
    version = 1

    def __init__(self, mounts: dict[str, str]) -> None:
        self.mounts = mounts  # controller → mount point

    def _dirs(self, path: str, controllers: tuple[str, ...] = V1_CONTROLLERS) -> list[tuple[str, str]]:
        return [(c, os.path.join(self.mounts[c], path.strip("/"))) for c in controllers if c in self.mounts]

    def problems(self, parent: str) -> list[str]:
        missing = [c for c in V1_REQUIRED if c not in self.mounts]
        if missing:
            return [f"cgroup v1 controllers not mounted: {', '.join(missing)}"]
        probe = f"{parent.strip('/')}/.probe-{os.getpid()}"
        try:
            for _controller, directory in self._dirs(probe, V1_REQUIRED):
                os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            return [f"cgroups are not writable here ({exc.strerror}: {exc.filename})"]
        finally:
            for _controller, directory in reversed(self._dirs(probe, V1_REQUIRED)):
                with contextlib.suppress(OSError):
                    os.rmdir(directory)
        return []

    def create(self, path: str, limits: Limits | None = None) -> None:
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            level = "/".join(parts[:depth])
            for controller, directory in self._dirs(level):
                if os.path.isdir(directory):
                    continue
                try:
                    os.mkdir(directory)
                except FileExistsError:
                    continue
                except OSError as exc:
                    raise CgroupError(f"can't create the {controller} cgroup {directory}: {exc.strerror}") from exc
                if controller == "cpuset":
                    # A new v1 cpuset starts empty and takes no process until it has CPUs and memory nodes.
                    parent = os.path.dirname(directory)
                    for name in ("cpuset.cpus", "cpuset.mems"):
                        _write(os.path.join(directory, name), _read(os.path.join(parent, name)).strip() or "\n")
        if limits is not None:
            self._limit(path, limits)

    def _limit(self, path: str, limits: Limits) -> None:
        dirs = dict(self._dirs(path))
        if limits.memory_bytes and "memory" in dirs:
            memory, swap = f"{dirs['memory']}/memory.limit_in_bytes", f"{dirs['memory']}/memory.memsw.limit_in_bytes"
            # No swap beyond the limit, where the kernel accounts swap at all. The memory limit may
            # never exceed the memory+swap one: lowering goes memory first, raising memory+swap first.
            try:
                _write(memory, str(limits.memory_bytes))
            except OSError as exc:
                if exc.errno != errno.EINVAL or not os.path.exists(swap):
                    raise
                _write(swap, str(limits.memory_bytes))
                _write(memory, str(limits.memory_bytes))
            with contextlib.suppress(OSError):
                _write(swap, str(limits.memory_bytes))
        if limits.pids_max and "pids" in dirs:
            _write(f"{dirs['pids']}/pids.max", str(limits.pids_max))
        if limits.cpus and "cpuset" in dirs:
            _write(f"{dirs['cpuset']}/cpuset.cpus", ",".join(map(str, limits.cpus)))
        if limits.cpu_quota and "cpu" in dirs:
            _write(f"{dirs['cpu']}/cpu.cfs_period_us", str(CPU_PERIOD_US))
            _write(f"{dirs['cpu']}/cpu.cfs_quota_us", str(max(1000, int(limits.cpu_quota * CPU_PERIOD_US))))
        # Device rules need privilege; a delegated (non-root) sandbox relies on its /dev alone.
        if "devices" in dirs and os.geteuid() == 0:
            # "deny all" is refused once the cgroup has children: only on a cgroup still open to all.
            if "a *:* rwm" in _read(f"{dirs['devices']}/devices.list"):
                _write(f"{dirs['devices']}/devices.deny", "a")
            for rule in BASIC_DEVICES:
                _write(f"{dirs['devices']}/devices.allow", rule)
            for kind, major, minor in limits.devices:
                _write(f"{dirs['devices']}/devices.allow", f"{kind} {major}:{minor} rwm")

    def add(self, path: str, pid: int) -> None:
        for controller, directory in self._dirs(path):
            try:
                _write(f"{directory}/cgroup.procs", str(pid))
            except OSError as exc:
                raise CgroupError(f"can't move {pid} into the {controller} cgroup {directory}: {exc.strerror}") from exc

    def procs(self, path: str) -> list[int]:
        # Every sandboxed process is in all the controllers' cgroups: one of them lists them all.
        controller = next(c for c in ("pids", "freezer", "memory", *V1_CONTROLLERS) if c in self.mounts)
        pids: set[int] = set()
        for _c, directory in self._dirs(path, (controller,)):
            for root, _dirs, _files in os.walk(directory):
                with contextlib.suppress(OSError):
                    pids.update(int(p) for p in _read(f"{root}/cgroup.procs").split())
        return sorted(pids)

    def set_frozen(self, path: str, frozen: bool) -> None:
        for _c, directory in self._dirs(path, ("freezer",)):
            _write(f"{directory}/freezer.state", "FROZEN" if frozen else "THAWED")
            if frozen:
                # FREEZING until every task has stopped; a task in a syscall can take a moment.
                for _ in range(500):
                    if _read(f"{directory}/freezer.state").strip() == "FROZEN":
                        return
                    time.sleep(0.01)
                    _write(f"{directory}/freezer.state", "FROZEN")

    def is_frozen(self, path: str) -> bool:
        for _c, directory in self._dirs(path, ("freezer",)):
            with contextlib.suppress(OSError):
                return _read(f"{directory}/freezer.state").strip() != "THAWED"
        return False

    def oom_kills(self, path: str) -> int:
        for _c, directory in self._dirs(path, ("memory",)):
            with contextlib.suppress(OSError):
                for line in _read(f"{directory}/memory.oom_control").splitlines():
                    name, _, value = line.partition(" ")
                    if name == "oom_kill":
                        return int(value)
        return 0

    def kill(self, path: str) -> None:
        if not self.exists(path):
            return
        # Frozen first, so nothing forks between our reading the list and the signals; a v1 frozen
        # task only dies once thawed.
        frozen = [d for _c, d in self._dirs(path, ("freezer",)) if os.path.isdir(d)]
        if frozen:
            self.set_frozen(path, True)
        for pid in self.procs(path):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if frozen:
            self.set_frozen(path, False)
            # Children frozen below this level (a frozen `work` inside) thaw too, or they never die.
            for directory in frozen:
                for root, _dirs, _files in os.walk(directory):
                    with contextlib.suppress(OSError):
                        _write(f"{root}/freezer.state", "THAWED")
        self._kill_loop(path)

    def remove(self, path: str) -> None:
        self.kill(path)
        for _c, directory in self._dirs(path):
            _remove_tree(directory)

    def exists(self, path: str) -> bool:
        return any(os.path.isdir(d) for _c, d in self._dirs(path, ("pids", "freezer", "memory")))

    def weigh(self, path: str, cores: int) -> None:
        for _c, directory in self._dirs(path, ("cpu",)):
            with contextlib.suppress(OSError):  # a delegated (non-root) parent may not be ours to weigh
                _write(f"{directory}/cpu.shares", str(1024 * max(1, cores)))


class V2(Hierarchy):
    version = 2

    def __init__(self, root: str) -> None:
        self.root = root

    def _dir(self, path: str) -> str:
        return os.path.join(self.root, path.strip("/"))

    def available(self, directory: str) -> set[str]:
        with contextlib.suppress(OSError):
            return set(_read(f"{directory}/cgroup.controllers").split())
        return set()

    def problems(self, parent: str) -> list[str]:
        top = self.available(self.root)
        missing = [c for c in V2_REQUIRED if c not in top]
        problems = [f"cgroup v2 controllers not available at {self.root}: {', '.join(missing)}"] if missing else []
        probe = f"{parent.strip('/')}/.probe-{os.getpid()}"
        try:
            self.create(probe)
            if not os.path.exists(f"{self._dir(probe)}/cgroup.freeze"):
                problems.append("this kernel's cgroup v2 has no freezer (cgroup.freeze)")
        except (OSError, CgroupError) as exc:
            problems.append(f"cgroups are not writable here ({exc})")
        finally:
            with contextlib.suppress(OSError):
                os.rmdir(self._dir(probe))
        return problems

    def _enable(self, directory: str) -> None:
        """Hand the wanted controllers down to `directory`'s children, where its parent offers them."""
        offered = self.available(directory) & set(V2_WANTED)
        enabled = set(_read(f"{directory}/cgroup.subtree_control").split())
        for controller in sorted(offered - enabled):
            with contextlib.suppress(OSError):  # busy or not delegated: the caps that need it say so
                _write(f"{directory}/cgroup.subtree_control", f"+{controller}")

    def create(self, path: str, limits: Limits | None = None) -> None:
        parts = path.strip("/").split("/")
        current = self.root
        for part in parts:
            self._enable(current)
            current = os.path.join(current, part)
            try:
                os.mkdir(current)
            except FileExistsError:
                pass
            except OSError as exc:
                raise CgroupError(f"can't create the cgroup {current}: {exc.strerror}") from exc
        if limits is not None:
            self._limit(current, limits)

    def _limit(self, directory: str, limits: Limits) -> None:
        if limits.memory_bytes and os.path.exists(f"{directory}/memory.max"):
            _write(f"{directory}/memory.max", str(limits.memory_bytes))
            with contextlib.suppress(OSError):
                _write(f"{directory}/memory.swap.max", "0")
        elif limits.memory_bytes:
            raise CgroupError(f"no memory controller at {directory}: memory can't be capped")
        if limits.pids_max and os.path.exists(f"{directory}/pids.max"):
            _write(f"{directory}/pids.max", str(limits.pids_max))
        elif limits.pids_max:
            raise CgroupError(f"no pids controller at {directory}: processes can't be capped")
        if limits.cpus and os.path.exists(f"{directory}/cpuset.cpus"):
            _write(f"{directory}/cpuset.cpus", ",".join(map(str, limits.cpus)))
        if limits.cpu_quota and os.path.exists(f"{directory}/cpu.max"):
            _write(f"{directory}/cpu.max", f"{max(1000, int(limits.cpu_quota * CPU_PERIOD_US))} {CPU_PERIOD_US}")
        # Devices: v2 has no device files (eBPF only); the sandbox's /dev holds only its own nodes.

    def add(self, path: str, pid: int) -> None:
        try:
            _write(f"{self._dir(path)}/cgroup.procs", str(pid))
        except OSError as exc:
            raise CgroupError(f"can't move {pid} into {self._dir(path)}: {exc.strerror}") from exc

    def procs(self, path: str) -> list[int]:
        pids: set[int] = set()
        for root, _dirs, _files in os.walk(self._dir(path)):
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in _read(f"{root}/cgroup.procs").split())
        return sorted(pids)

    def set_frozen(self, path: str, frozen: bool) -> None:
        directory = self._dir(path)
        _write(f"{directory}/cgroup.freeze", "1" if frozen else "0")
        if frozen:
            for _ in range(500):
                if "frozen 1" in _read(f"{directory}/cgroup.events"):
                    return
                time.sleep(0.01)

    def is_frozen(self, path: str) -> bool:
        with contextlib.suppress(OSError):
            return _read(f"{self._dir(path)}/cgroup.freeze").strip() == "1"
        return False

    def oom_kills(self, path: str) -> int:
        with contextlib.suppress(OSError):
            for line in _read(f"{self._dir(path)}/memory.events").splitlines():
                name, _, value = line.partition(" ")
                if name == "oom_kill":
                    return int(value)
        return 0

    def kill(self, path: str) -> None:
        directory = self._dir(path)
        if not os.path.isdir(directory):
            return
        if os.path.exists(f"{directory}/cgroup.kill"):
            _write(f"{directory}/cgroup.kill", "1")  # frozen tasks die too
        else:
            self.set_frozen(path, True)
            for pid in self.procs(path):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            self.set_frozen(path, False)
        self._kill_loop(path)

    def remove(self, path: str) -> None:
        self.kill(path)
        _remove_tree(self._dir(path))

    def exists(self, path: str) -> bool:
        return os.path.isdir(self._dir(path))

    def weigh(self, path: str, cores: int) -> None:
        with contextlib.suppress(OSError):  # no cpu controller, or not ours to weigh
            _write(f"{self._dir(path)}/cpu.weight", str(min(10000, 100 * max(1, cores))))


def detect(version: str = "auto", root: str = "") -> Hierarchy | None:
    """The hierarchy sandboxes use: v2 where it holds the controllers (or is asked for), else v1; None if neither."""
    mounts = _mounts()
    v1 = {}
    v2_root = ""
    for point, fstype, options in mounts:
        if fstype == "cgroup2":
            if not v2_root or point == ROOT:
                v2_root = point
            continue
        for controller in V1_CONTROLLERS:
            if controller in options:
                v1[controller] = point
    if root:
        v2_root = root
    if version == "2" or (
        version == "auto" and v2_root and (not v1 or set(V2_REQUIRED) <= V2(v2_root).available(v2_root))
    ):
        return V2(v2_root) if v2_root else None
    if version in ("1", "auto") and v1:
        return V1(v1)
    return None
