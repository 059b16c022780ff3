"""cgroup v1: one hierarchy per controller, so a sandbox's cgroup is one folder in each."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time

from .cgroups_common import CPU_PERIOD_US, CgroupError, Hierarchy, Limits, _read, _remove_tree, _write

V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuset", "freezer", "devices")
# What a sandbox can't do without: caps on memory and processes, and freezing.
V1_REQUIRED = ("memory", "pids", "freezer")


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
