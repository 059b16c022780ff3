"""The heartbeat's inventory: GPUs as nvidia-smi reports them, whose processes are on them, the disk."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.workstation.nvidia_smi_support import GPU_LINES, stand_in_nvidia_smi
from workstation import capabilities, inventory


@pytest.fixture(autouse=True)
def sandbox_checked_first() -> None:
    """The sandbox check (cached a minute) made with this machine's PATH, not a test's narrowed one."""
    capabilities.local_report()


@pytest.fixture
def path_with(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    def put_first(folder: Path) -> None:
        monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")

    return put_first


@pytest.fixture
def sleepers() -> Iterator[dict[str, int]]:
    """Real processes of three users: root (nobody's attempt), `daemon` and `nobody`."""
    started: dict[str, subprocess.Popen[bytes]] = {}
    for user in ("root", "daemon", "nobody"):
        started[user] = subprocess.Popen(["sleep", "60"], user=user if os.geteuid() == 0 else None)
    yield {user: process.pid for user, process in started.items()}
    for process in started.values():
        process.kill()
        process.wait()


def test_gpus_are_read_from_nvidia_smi_with_what_a_card_lacks_as_none(tmp_path: Path, path_with) -> None:
    path_with(stand_in_nvidia_smi(tmp_path / "bin", gpus=GPU_LINES))

    report = inventory.report()

    assert report["notes"] == []
    assert report["gpus"] == [
        {
            "index": 0,
            "uuid": "GPU-4a7c3d2e-91f0-5b6a-8c1d-0e2f3a4b5c6d",
            "model": "NVIDIA H100 80GB HBM3",
            "memory_mb": 81559,
            "temperature_c": 34,
            "ecc_errors": 0,
            "foreign_processes": [],
        },
        {
            "index": 1,
            "uuid": "GPU-b81e22f4-07c3-4d9a-a6e5-3f2c1d0b9a87",
            "model": "NVIDIA H100 80GB HBM3",
            "memory_mb": 81559,
            "temperature_c": 41,
            "ecc_errors": 3,
            "foreign_processes": [],
        },
        {
            "index": 2,
            "uuid": "GPU-0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a",
            "model": "NVIDIA GeForce RTX 4090",
            "memory_mb": 24564,
            "temperature_c": None,
            "ecc_errors": None,
            "foreign_processes": [],
        },
    ]
    assert json.loads(json.dumps(report)) == report


@pytest.mark.skipif(os.geteuid() != 0, reason="starting processes as other users needs root")
def test_a_process_is_foreign_unless_an_attempt_or_the_holders_user_runs_it(
    tmp_path: Path, path_with, sleepers: dict[str, int], settings
) -> None:
    settings.TERMINAL_TMUX_USER = "daemon"  # stands for the holders' user: an account every Debian has
    gone = subprocess.Popen(["true"])
    gone.wait()
    processes = (
        f"GPU-4a7c3d2e-91f0-5b6a-8c1d-0e2f3a4b5c6d, {sleepers['root']}, /usr/bin/python3\n"
        f"GPU-4a7c3d2e-91f0-5b6a-8c1d-0e2f3a4b5c6d, {sleepers['daemon']}, /usr/bin/python3\n"
        f"GPU-b81e22f4-07c3-4d9a-a6e5-3f2c1d0b9a87, {sleepers['nobody']}, /opt/miner, v2\n"
        f"GPU-b81e22f4-07c3-4d9a-a6e5-3f2c1d0b9a87, {gone.pid}, /usr/bin/python3\n"
    )
    path_with(stand_in_nvidia_smi(tmp_path / "bin", gpus=GPU_LINES, processes=processes))

    gpus = inventory.report()["gpus"]
    assert gpus is not None
    assert gpus[0]["foreign_processes"] == [{"pid": sleepers["root"], "user": "root", "command": "/usr/bin/python3"}]
    # A process name with a comma in it stays whole; one that ended meanwhile is left out.
    assert gpus[1]["foreign_processes"] == [{"pid": sleepers["nobody"], "user": "nobody", "command": "/opt/miner, v2"}]

    # An SSH workstation's user runs its sandboxes: its processes are the site's.
    gpus = inventory.report(also_ours=["nobody"])["gpus"]
    assert gpus is not None
    assert gpus[1]["foreign_processes"] == []


def test_attempt_users_by_the_naming_scheme_are_ours(settings) -> None:
    settings.TERMINAL_ATTEMPT_USER_PREFIX = "rb-a"
    assert inventory.is_ours("rb-a17")
    assert not inventory.is_ours("rb-admin")
    assert not inventory.is_ours("rb-a")
    assert inventory.is_ours(settings.TERMINAL_TMUX_USER)


def test_without_nvidia_smi_the_gpus_are_unknown_and_the_note_says_why(tmp_path: Path, monkeypatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("nvidia-smi") is None

    report = inventory.report()

    assert report["gpus"] is None
    assert report["notes"] == ["nvidia-smi not found: the GPUs are as the admin declared them"]


def test_a_failing_nvidia_smi_leaves_the_gpus_unknown_with_its_last_words(tmp_path: Path, path_with) -> None:
    path_with(stand_in_nvidia_smi(tmp_path / "bin", gpus=GPU_LINES, exit_code=9))

    report = inventory.report()

    assert report["gpus"] is None
    assert report["notes"][0].startswith("nvidia-smi failed (exit 9): NVIDIA-SMI has failed")


def test_a_hung_nvidia_smi_is_given_up_on_after_its_timeout(tmp_path: Path, path_with, monkeypatch) -> None:
    monkeypatch.setattr(inventory, "NVIDIA_SMI_SECONDS", 0.5)
    path_with(stand_in_nvidia_smi(tmp_path / "bin", gpus=GPU_LINES, sleep=30))

    report = inventory.report()

    assert report["gpus"] is None
    assert report["notes"] == ["nvidia-smi did not answer within 0.5 s"]


def test_garbled_nvidia_smi_output_is_a_note_not_a_crash(tmp_path: Path, path_with) -> None:
    path_with(stand_in_nvidia_smi(tmp_path / "bin", gpus="0, GPU-x, NVIDIA H100\n"))

    report = inventory.report()

    assert report["gpus"] is None
    assert "GPU line with 3 fields" in report["notes"][0]


def test_the_disk_is_measured_where_the_workspaces_will_be_before_they_exist(tmp_path: Path, settings) -> None:
    settings.TERMINAL_WORKSPACE_ROOT = tmp_path / "not-yet" / "workspaces"

    disk = inventory.report()["disk"]

    assert disk is not None
    assert disk["path"] == str(tmp_path / "not-yet" / "workspaces")
    usage = shutil.disk_usage(tmp_path)
    assert disk["total_bytes"] == usage.total
    assert 0 < disk["free_bytes"] <= usage.total


def test_the_report_carries_the_sandbox_check(tmp_path: Path, path_with) -> None:
    path_with(stand_in_nvidia_smi(tmp_path / "bin", gpus=""))

    report = inventory.report()

    assert report["sandbox_problems"] == capabilities.local_report().problems
    assert report["gpus"] == []
