"""Preparing the environment is off the clock, so nothing may be done during it that would count.

Before the clock waited for the environment, the expert's shell ran and the Score button worked from
the moment they pressed Start, during the minutes of set-up that are now not counted: work done then
would be time nobody measured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from channels.db import database_sync_to_async

from graders.models import ScoringJob
from tests.hostile.conftest import ROOT_ONLY, end_everything, local_attempt_at
from tests.hostile.shell import close
from tests.trials import terminal_support as ts
from trials import services
from trials.models import Attempt


@pytest.fixture
def preparing(term_dirs: Path) -> Iterator[Attempt]:
    """An attempt just started: its environment is being prepared, its clock not started."""
    made = local_attempt_at("grading_test_ok", clock_started_at=None)
    yield made
    end_everything(made)


@pytest.mark.django_db
def test_the_expert_cannot_score_before_the_clock_starts(preparing: Attempt, api) -> None:
    response = api(preparing.user).post(f"/api/attempts/{preparing.pk}/score/")
    assert response.status_code == 400, response.json()
    assert "being prepared" in str(response.json())
    assert not ScoringJob.objects.filter(attempt=preparing).exists()


@ROOT_ONLY
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(180)
@ts.sync
async def test_the_experts_shell_runs_nothing_until_the_clock_starts(preparing: Attempt, monkeypatch) -> None:
    from trials import consumers
    from workstation import layout

    # No worker runs: the open terminal's own checks carry the server's word to the workstation.
    monkeypatch.setattr(consumers, "STATUS_CHECK_SECONDS", 0.5)
    screen = await ts.open_screen(ts.router(), preparing.pk, preparing.user, number=1, cols=200, rows=50)
    await screen.message("frozen", timeout=20)
    await screen.type("touch typed-while-preparing\r")
    await asyncio.sleep(2.0)
    typed = layout.workspace(preparing.pk) / "typed-while-preparing"
    assert not typed.exists(), "the shell ran a command before the clock started"

    await database_sync_to_async(services.attempt_clock_start)(attempt_id=preparing.pk)
    # Thawed by the tab's next check (every 0.5 s here); 30 s, not 10: a CI run on a loaded machine once
    # took longer than 10 s to carry the word, thaw the shell and start `touch`.
    for _ in range(120):
        if typed.exists():
            break
        await asyncio.sleep(0.25)
    assert typed.exists(), "the shell runs once the clock has started"
    await close(screen)
