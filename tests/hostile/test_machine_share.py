"""An attempt's share of the machine: its own processes only, its GPUs only, its cores, and caps it can't exceed.

Before the sandbox an expert's shell listed every process on the host with its command line, a
1-GPU environment booked on an 8-GPU host saw all eight GPUs and every core, and nothing capped
memory or processes.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async

from tests.hostile.conftest import ROOT_ONLY, end_everything, local_attempt_at
from tests.hostile.shell import close, open_shell, run
from tests.trials import terminal_support as ts
from trials.models import Attempt

pytestmark = [ROOT_ONLY, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


@ts.sync
async def test_ps_shows_only_the_attempts_own_processes(attempt: Attempt, another_attempt: Attempt) -> None:
    theirs = await open_shell(another_attempt)
    await run(theirs, "sleep 300 & echo THEIRS-STARTED")
    screen = await open_shell(attempt)
    await run(screen, "sleep 301 & true")
    listing = await run(screen, "ps -eo pid,user,args --no-headers")
    await close(screen)
    await close(theirs)
    commands = [line.split(None, 2)[2] for line in listing.strip().splitlines() if len(line.split(None, 2)) == 3]
    assert any("sleep 301" in c for c in commands), listing
    assert not any("sleep 300" in c for c in commands), "another attempt's process is visible"
    # Nothing of the host: no server, no tmux, no recorder, no init of the machine.
    for outsider in ("pytest", "tmux", "rebench-termhold", "uvicorn", "celery", "postgres", "redis", "sshd"):
        assert not any(outsider in c for c in commands), (outsider, listing)
    # The server's own process is not addressable either.
    out = await _run_once(attempt, f"kill -0 {os.getpid()} 2>&1; cat /proc/{os.getpid()}/cmdline 2>&1")
    assert "No such process" in out
    assert "No such file" in out


async def _run_once(attempt: Attempt, command: str) -> str:
    screen = await open_shell(attempt)
    out = await run(screen, command)
    await close(screen)
    return out


@pytest.fixture
def fake_gpus(term_dirs: Path, settings) -> Path:
    """Device nodes of eight GPUs (NVIDIA's major 195) for the wiring, where this machine has none."""
    folder = term_dirs / "dev"
    folder.mkdir()
    folder.chmod(0o755)
    for index in range(8):
        os.mknod(folder / f"nvidia{index}", 0o666 | 0o020000, os.makedev(195, index))
    os.mknod(folder / "nvidiactl", 0o666 | 0o020000, os.makedev(195, 255))
    settings.SANDBOX_DEV_DIR = str(folder)
    return folder


@pytest.mark.parametrize(
    ("held", "visible"),
    [
        pytest.param(None, 0, id="the-gpu-its-booking-holds"),
        pytest.param([3], 3, id="a-reservation-holding-gpu-3"),
    ],
)
@ts.sync
async def test_a_one_gpu_attempt_on_an_eight_gpu_host_sees_its_gpu_and_its_share_of_cores(
    term_dirs: Path, fake_gpus: Path, held: list[int] | None, visible: int
) -> None:
    where: dict[str, Any] = {"gpus": held} if held is not None else {}
    attempt = await database_sync_to_async(local_attempt_at)(**where)
    try:
        out = await _run_once(attempt, "ls /dev | grep nvidia; echo CUDA=$CUDA_VISIBLE_DEVICES; echo CORES=$(nproc)")
    finally:
        await database_sync_to_async(end_everything)(attempt)
    nodes = sorted(line.strip() for line in out.splitlines() if line.strip().startswith("nvidia"))
    assert nodes == [f"nvidia{visible}", "nvidiactl"], out
    assert f"CUDA={visible}" in out
    # 1 GPU of 8 on this machine's cores: a proportional share, at least one core, never all of a bigger host.
    cores = len(os.sched_getaffinity(0))
    expected = max(1, cores // 8)
    assert f"CORES={expected}" in out, out


@ts.sync
async def test_a_fork_bomb_is_stopped_by_the_process_cap(attempt: Attempt, settings) -> None:
    settings.SANDBOX_PIDS_MAX = 64
    screen = await open_shell(attempt)
    bomb = (
        "python3 -c 'import os, time\n"
        "n = 0\n"
        "try:\n"
        "    while n < 500:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(20); os._exit(0)\n"
        "        n += 1\n"
        "except OSError as e:\n"
        '    print("REFUSED", e.errno)\n'
        'print("FORKED", n)\''
    )
    out = await run(screen, bomb, timeout=60)
    assert "REFUSED 11" in out, out  # EAGAIN: the cgroup's pids.max
    forked = int(out.split("FORKED", 1)[1].split()[0])
    assert forked < 64
    # The shell itself and the host are fine; the bomb's sleepers are the attempt's own business.
    await run(screen, "pkill sleep; true")
    assert "ALIVE" in await run(screen, "echo ALIVE")
    await close(screen)
    assert subprocess.run(["true"], check=False).returncode == 0


@ts.sync
async def test_a_memory_hog_is_killed_inside_the_sandbox_while_another_attempt_keeps_working(
    attempt: Attempt, another_attempt: Attempt, settings
) -> None:
    settings.SANDBOX_MEMORY_GB = 0.25
    screen = await open_shell(attempt)
    other = await open_shell(another_attempt)
    out = await run(screen, "python3 -c 'b = bytearray(2 << 30); print(\"ALLOCATED\")'; echo STATUS=$?", timeout=60)
    assert "ALLOCATED" not in out
    assert "STATUS=137" in out or "MemoryError" in out, out
    assert "STILL" in await run(screen, "echo STILL"), "the shell survives its child's death"
    assert "WORKING" in await run(other, "echo WORKING")
    await close(other)
    await close(screen)
