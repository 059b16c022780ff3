"""cgroup v2: one unified hierarchy, where controllers are enabled for the children of each folder."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from .cgroups_common import CPU_PERIOD_US, CgroupError, Hierarchy, Limits, _read, _remove_tree, _write

V2_WANTED = ("memory", "pids", "cpu", "cpuset")
V2_REQUIRED = ("memory", "pids")


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
