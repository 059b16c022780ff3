"""The same attacks on an SSH workstation: its attempts are sandboxed there as they are here.

The workstation is a real SSH server on loopback that treats the site's key as a workstation's sshd
does: it runs the gate (workstation/gate.py), as root, whatever the command line asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async

from tests import factories
from tests.hostile.conftest import ROOT_ONLY
from tests.hostile.shell import close, open_shell, run
from tests.hostile.test_the_clock import TICKER, count_in
from tests.trials import terminal_support as ts
from tests.trials.ssh_server import ssh_server
from trials import services
from trials.models import Attempt, Pause, Workstation
from workstation import layout

pytestmark = [ROOT_ONLY, pytest.mark.django_db(transaction=True), pytest.mark.timeout(150)]


@pytest.fixture
def ssh_attempt(term_dirs: Path, settings: Any) -> Iterator[Attempt]:
    attempt = factories.AttemptFactory.create(
        reservation__workstation__backend=Workstation.Backend.SSH,
        reservation__workstation__host="127.0.0.1",
    )
    yield attempt
    ts.remove_remote_spool(attempt.pk)


@ts.sync
async def test_an_ssh_workstations_shell_sees_neither_the_host_nor_its_network_nor_tmux(
    ssh_attempt: Attempt, term_dirs: Path, settings: Any
) -> None:
    async with ssh_server(term_dirs) as server:
        await asyncio.to_thread(ts.point_at_ssh_server, ssh_attempt, server, settings)
        screen = await open_shell(ssh_attempt)
        listing = await run(screen, "ps -eo args --no-headers")
        reach = await run(
            screen,
            f"ls -d {settings.DATA_DIR} {settings.SANDBOX_STATE_DIR} 2>&1; "
            f"tmux -L {layout.sandbox_name(ssh_attempt.pk)} ls 2>&1; "
            "python3 -c 'import socket; s = socket.socket(); s.settimeout(3); "
            'print("PG", s.connect_ex(("127.0.0.1", 5432)))\'',
        )
        await close(screen)
    assert not any(word in listing for word in ("sshd", "pytest", "tmux", "rebench-termhold", "postgres")), listing
    assert reach.count("cannot access") == 2, reach
    assert "no server running" in reach or "error connecting" in reach, reach
    assert "PG 111" in reach, reach


@ts.sync
async def test_a_break_freezes_an_ssh_workstations_sandbox(
    ssh_attempt: Attempt, term_dirs: Path, settings: Any, monkeypatch: Any
) -> None:
    from trials import consumers

    monkeypatch.setattr(consumers, "STATUS_CHECK_SECONDS", 0.5)
    async with ssh_server(term_dirs) as server:
        await asyncio.to_thread(ts.point_at_ssh_server, ssh_attempt, server, settings)
        screen = await open_shell(ssh_attempt)
        await run(screen, TICKER.format(file="ticks"))
        ticks = layout.workspace(ssh_attempt.pk) / "ticks"
        await asyncio.sleep(1.0)
        assert count_in(ticks) > 3
        await database_sync_to_async(services.attempt_pause)(
            attempt=ssh_attempt, by=ssh_attempt.user, reason=Pause.Reason.BREAK
        )
        await screen.message("frozen", timeout=10)
        await asyncio.sleep(1.5)
        before = count_in(ticks)
        await asyncio.sleep(2.0)
        assert count_in(ticks) == before, "work went on during the break"
        await database_sync_to_async(services.attempt_resume)(attempt=ssh_attempt, by=ssh_attempt.user)
        await asyncio.sleep(2.0)
        assert count_in(ticks) > before
        await close(screen)
