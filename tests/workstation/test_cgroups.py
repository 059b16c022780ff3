"""The sandbox's cgroups on this machine's real hierarchies: caps, freezing, thawing, killing (v1 and v2)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from workstation.sandbox import cgroups

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="making cgroups needs root")
NAME = f"rebench-test-cgroups-{os.getpid()}"


def busy_loop() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sh", "-c", "while :; do :; done"])


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def progress(pid: int, seconds: float = 0.5) -> int:
    before = cpu_ticks(pid)
    time.sleep(seconds)
    return cpu_ticks(pid) - before


@pytest.fixture
def v1() -> Iterator[cgroups.V1]:
    hierarchy = cgroups.detect("1")
    if hierarchy is None:
        pytest.skip("no cgroup v1 hierarchy on this machine")
    assert isinstance(hierarchy, cgroups.V1)
    yield hierarchy
    hierarchy.remove(NAME)


@pytest.fixture
def v2() -> Iterator[cgroups.V2]:
    hierarchy = cgroups.detect("2")
    if hierarchy is None:
        pytest.skip("no cgroup v2 hierarchy on this machine")
    assert isinstance(hierarchy, cgroups.V2)
    hierarchy.create(NAME)
    if not os.path.exists(os.path.join(hierarchy.root, NAME, "cgroup.freeze")):
        hierarchy.remove(NAME)
        pytest.skip("this kernel's cgroup v2 has no freezer")
    yield hierarchy
    hierarchy.remove(NAME)


def read(path: str) -> str:
    with open(path) as handle:
        return handle.read().strip()


def test_v1_writes_the_caps_and_freezes_thaws_and_kills_a_process(v1: cgroups.V1) -> None:
    v1.create(NAME, cgroups.Limits(memory_bytes=256 * 1024**2, pids_max=50, cpus=(0,), cpu_quota=0.5))
    v1.create(f"{NAME}/work")
    mounts = v1.mounts
    assert read(f"{mounts['memory']}/{NAME}/memory.limit_in_bytes") == str(256 * 1024**2)
    assert read(f"{mounts['pids']}/{NAME}/pids.max") == "50"
    assert read(f"{mounts['cpuset']}/{NAME}/cpuset.cpus") == "0"
    assert read(f"{mounts['cpu']}/{NAME}/cpu.cfs_quota_us") == "50000"
    process = busy_loop()
    try:
        v1.add(f"{NAME}/work", process.pid)
        assert v1.procs(NAME) == [process.pid]
        assert progress(process.pid) > 0
        v1.set_frozen(f"{NAME}/work", True)
        assert v1.is_frozen(f"{NAME}/work")
        assert progress(process.pid) == 0
        v1.set_frozen(f"{NAME}/work", False)
        assert progress(process.pid) > 0
        v1.set_frozen(f"{NAME}/work", True)
        v1.kill(NAME)  # frozen processes die too (v1 needs them thawed to)
        assert process.wait(timeout=5) == -9
        assert v1.procs(NAME) == []
    finally:
        process.kill()


def test_v1_raises_a_memory_cap_above_the_earlier_one(v1: cgroups.V1) -> None:
    """memory.limit may never exceed memory+swap: raising writes them in the other order."""
    v1.create(NAME, cgroups.Limits(memory_bytes=128 * 1024**2))
    v1.create(NAME, cgroups.Limits(memory_bytes=512 * 1024**2))
    assert read(f"{v1.mounts['memory']}/{NAME}/memory.limit_in_bytes") == str(512 * 1024**2)


def test_v2_freezes_thaws_and_kills_a_process(v2: cgroups.V2) -> None:
    v2.create(f"{NAME}/work")
    process = busy_loop()
    try:
        v2.add(f"{NAME}/work", process.pid)
        assert v2.procs(NAME) == [process.pid]
        v2.set_frozen(f"{NAME}/work", True)
        assert v2.is_frozen(f"{NAME}/work")
        assert progress(process.pid) == 0
        v2.set_frozen(f"{NAME}/work", False)
        assert progress(process.pid) > 0
        v2.set_frozen(f"{NAME}/work", True)
        v2.kill(NAME)
        assert process.wait(timeout=5) == -9
    finally:
        process.kill()


def test_v2_without_a_memory_controller_refuses_a_cap_and_says_why(v2: cgroups.V2) -> None:
    if "memory" in v2.available(v2.root):
        pytest.skip("this v2 hierarchy has the memory controller")
    with pytest.raises(cgroups.CgroupError, match="no memory controller"):
        v2.create(NAME, cgroups.Limits(memory_bytes=256 * 1024**2))
    assert any("controllers not available" in p for p in v2.problems("rebench"))


def test_auto_takes_the_hierarchy_that_holds_the_controllers() -> None:
    found = cgroups.detect("auto")
    assert found is not None
    if isinstance(found, cgroups.V2):
        assert {"memory", "pids"} <= found.available(found.root)
    else:
        assert isinstance(found, cgroups.V1)
        assert {"memory", "pids", "freezer"} <= set(found.mounts)
    assert found.problems("rebench") == []


def test_the_parent_of_every_sandbox_weighs_as_much_as_the_hosts_cores(v1: cgroups.V1) -> None:
    """Siblings share CPU by weight: all attempts together must not weigh as one process."""
    v1.create(NAME)
    v1.weigh(NAME, 8)
    assert read(f"{v1.mounts['cpu']}/{NAME}/cpu.shares") == str(8 * 1024)
