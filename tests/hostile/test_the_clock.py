"""The clock holds on the workstation itself: nothing runs during a pause, nothing after the deadline, worker or not.

Before the sandbox, a break or a scoring pause stopped the clock while the expert's processes kept
running, and with the Celery worker stopped across the deadline the terminal kept working for
minutes and the final score came from that work.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest
from channels.db import database_sync_to_async

from graders.models import ScoreLogEntry, ScoringJob
from tests.hostile.conftest import ROOT_ONLY
from tests.hostile.shell import close, open_shell, run
from tests.trials import terminal_support as ts
from trials import services
from trials.models import Attempt, Pause

pytestmark = [ROOT_ONLY, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

# The count is written aside and renamed into place, so a read never meets the file truncated and empty
# (an empty read once made the ticker look as if it had gone backwards).
TICKER = (
    "nohup sh -c 'i=0; while true; do i=$((i+1)); echo $i > {file}.new; mv {file}.new {file}; sleep 0.1; done'"
    " >/dev/null 2>&1 & true"
)


def count_in(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return -1


async def progress(path: Path, seconds: float) -> int:
    """How far the ticker got in `seconds`."""
    before = count_in(path)
    await asyncio.sleep(seconds)
    return count_in(path) - before


@ts.sync
async def test_a_break_freezes_the_attempts_processes_until_it_resumes(attempt: Attempt, monkeypatch) -> None:
    from trials import consumers
    from workstation import layout

    # No worker runs: the open terminal's own checks carry the pause to the workstation.
    monkeypatch.setattr(consumers, "STATUS_CHECK_SECONDS", 0.5)
    screen = await open_shell(attempt)
    await run(screen, TICKER.format(file="ticks"))
    ticks = layout.workspace(attempt.pk) / "ticks"
    assert await progress(ticks, 1.0) > 3, "the ticker runs"

    await database_sync_to_async(services.attempt_pause)(attempt=attempt, by=attempt.user, reason=Pause.Reason.BREAK)
    await screen.message("frozen", timeout=10)
    await asyncio.sleep(1.0)  # a check or two
    assert await progress(ticks, 2.0) == 0, "work went on during the break"
    # Something started during the break doesn't start either.
    await screen.type("touch started-during-break\r")
    await asyncio.sleep(1.5)
    assert not (layout.workspace(attempt.pk) / "started-during-break").exists()

    await database_sync_to_async(services.attempt_resume)(attempt=attempt, by=attempt.user)
    await asyncio.sleep(1.5)
    assert await progress(ticks, 1.0) > 3, "the ticker runs again after the break"
    assert (layout.workspace(attempt.pk) / "started-during-break").exists()
    await close(screen)


@ts.sync
async def test_work_after_the_deadline_is_impossible_without_a_worker_and_absent_from_the_final_score(
    short_attempt: Attempt,
) -> None:
    from workstation import layout
    from workstation.agent.tasks import scoring_job_run

    attempt = short_attempt
    screen = await open_shell(attempt)
    # The score this test package reads is whatever score.txt says: a ticker writes it on and on.
    await run(screen, TICKER.format(file="score.txt"))
    await close(screen)  # no tab, no worker, no beat: only the workstation knows the deadline
    score = layout.workspace(attempt.pk) / "score.txt"
    deadline = (attempt.started_at + attempt.time_limit).timestamp()
    await asyncio.sleep(max(0.0, deadline - time.time()) + 1.5)
    at_deadline = count_in(score)
    assert at_deadline > 0
    assert await progress(score, 2.0) == 0, "work went on after the deadline"

    # The expert's next request (any of them) finds the attempt ended at its deadline; the final
    # score, whenever a worker runs it, is the frozen state's.
    await database_sync_to_async(services.attempt_end_if_overdue)(attempt_id=attempt.pk)
    job = await database_sync_to_async(
        lambda: ScoringJob.objects.create(attempt=attempt, kind=ScoringJob.Kind.FINAL, queue_name="ws.test")
    )()
    await asyncio.to_thread(scoring_job_run, str(job.pk))
    entry = await database_sync_to_async(lambda: ScoreLogEntry.objects.get(job=job))()
    assert entry.score == at_deadline, (entry.score, at_deadline, entry.message)
    # The ticker is gone for good: the final scoring stopped what the attempt left behind.
    assert await progress(score, 1.0) == 0


def test_a_thaw_word_read_before_a_break_cant_undo_the_breaks_freeze_when_it_lands_last(
    attempt: Attempt, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two words reach the workstation at once: the open tab's check, read just before the break began,
    and the break's own. The older one is slow to apply (a loaded machine); it lands after the break's
    freeze. Applying what it had read would thaw the sandbox and the expert's processes would run on
    through the break until the keeper's next tick (a CI run saw a tick counted during a break)."""
    from trials import selectors
    from workstation import layout
    from workstation.backends.local import sandbox_control_sync, sandbox_up
    from workstation.sandbox import WORK, hierarchy_for, lifecycle, policy

    sandbox_up(selectors.attempt_sandbox_request(attempt), selectors.attempt_sandbox_control(attempt.pk))
    before_the_break = selectors.attempt_sandbox_control(attempt.pk)
    services.attempt_pause(attempt=attempt, by=attempt.user, reason=Pause.Reason.BREAK)
    the_break = selectors.attempt_sandbox_control(attempt.pk)
    assert the_break["version"] > before_the_break["version"]
    assert the_break["paused"] == "break"

    real_apply = lifecycle.apply
    first_applied = threading.Event()
    slow_once = threading.Lock()

    def slow_apply(*args: object, **kwargs: object) -> object:
        if slow_once.acquire(blocking=False):  # the first to apply: the old word, slowed down
            first_applied.set()
            time.sleep(1.0)
        return real_apply(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(lifecycle, "apply", slow_apply)
    old = threading.Thread(target=sandbox_control_sync, args=(attempt.pk, before_the_break))
    old.start()
    assert first_applied.wait(10)
    sandbox_control_sync(attempt.pk, the_break)
    old.join(20)

    written = json.loads((layout.sandbox_dir(attempt.pk) / policy.POLICY_FILE).read_text())
    sandbox = policy.Policy.from_json(written)
    hierarchy = hierarchy_for(sandbox)
    assert hierarchy is not None
    assert hierarchy.exists(sandbox.cgroup(WORK))
    assert hierarchy.is_frozen(sandbox.cgroup(WORK)), "the old word thawed the sandbox during the break"
