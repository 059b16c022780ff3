"""An outage pause doesn't hand out free compute: the sandbox on a workstation the server stops hearing
stops by itself when the server pauses the attempt for the outage, and goes on when it hears again.

Before the lease, the server paused the attempt's clock when its workstation went silent while the
keeper there knew nothing of it: a training run started before the outage went on for as long as the
outage lasted, on a clock that didn't count it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async

from tests.hostile.conftest import ROOT_ONLY
from tests.hostile.shell import close, open_shell, run
from tests.hostile.test_the_clock import TICKER, progress
from tests.trials import terminal_support as ts
from trials import services
from trials.models import Attempt

pytestmark = [ROOT_ONLY, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

LEASE_SECONDS = 8


@ts.sync
async def test_work_started_before_an_outage_stops_when_the_lease_runs_out_and_resumes_when_renewed(
    attempt: Attempt, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trials import consumers
    from workstation import layout

    # The open tab renews the server's word too (a tab that works proves the link): not during this test.
    monkeypatch.setattr(consumers, "STATUS_CHECK_SECONDS", 3600.0)
    screen = await open_shell(attempt)
    await run(screen, TICKER.format(file="ticks"))
    await close(screen)
    ticks = layout.workspace(attempt.pk) / "ticks"
    assert await progress(ticks, 1.0) > 3, "the ticker runs"

    # The last word the workstation hears before its link is cut, with a lease as long as the server
    # waits before pausing for an outage (seconds here); then nothing renews it.
    settings.WORKSTATION_OFFLINE_AFTER = timedelta(seconds=LEASE_SECONDS)
    await database_sync_to_async(services.attempt_sandbox_control_send)(attempt_id=attempt.pk)
    assert await progress(ticks, 1.0) > 3, "the ticker runs while the lease lasts"
    await asyncio.sleep(LEASE_SECONDS)
    assert await progress(ticks, 2.0) == 0, "work went on after the lease ran out"

    # The workstation answers again: the sweep's renewal thaws it, and the ticker is the same process.
    # (A lease long enough that a loaded machine can't let it run out while the test looks.)
    settings.WORKSTATION_OFFLINE_AFTER = timedelta(seconds=120)
    await database_sync_to_async(services.attempt_sandbox_control_send)(attempt_id=attempt.pk)
    await asyncio.sleep(1.0)
    assert await progress(ticks, 1.0) > 3, "the ticker runs again once the server is heard"
