"""An attempt's share of the machine as a cgroup: caps on memory, processes and CPUs, freezing, killing (v1 and v2).

Standard library only: this file also runs on SSH workstations, copied there with the rest of the
sandbox package. A cgroup is named by a path relative to the hierarchy's root (`rebench/<name>`);
on cgroup v1 the same path exists once per controller, on v2 once.

By subject: cgroups_common.py (the error, `Limits`, the `Hierarchy` contract), cgroups_v1.py and
cgroups_v2.py (one implementation each); this module finds the machine's hierarchy (`detect`) and
re-exports every name, so the sandbox's modules use `cgroups.<name>` whatever the version.
"""

from __future__ import annotations

import contextlib

from .cgroups_common import CPU_PERIOD_US, KILL_PASSES, CgroupError, Hierarchy, Limits
from .cgroups_v1 import BASIC_DEVICES, V1, V1_CONTROLLERS, V1_REQUIRED
from .cgroups_v2 import V2, V2_REQUIRED, V2_WANTED

ROOT = "/sys/fs/cgroup"

__all__ = [
    "BASIC_DEVICES",
    "CPU_PERIOD_US",
    "KILL_PASSES",
    "ROOT",
    "V1",
    "V1_CONTROLLERS",
    "V1_REQUIRED",
    "V2",
    "V2_REQUIRED",
    "V2_WANTED",
    "CgroupError",
    "Hierarchy",
    "Limits",
    "detect",
]


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
