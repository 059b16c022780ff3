"""The expert can neither stop, reach nor read what holds and records their terminal, nor block anyone's start.

Before the sandbox the expert's shell ran in a tmux server of their own: `tmux pipe-pane` to
/dev/null hid work from the recording without a gap marker, `pkill` stopped the recorder, every
recording part was world-readable, and `flock -x` on the world-readable accounts lock in /tmp
stopped every new attempt's user creation, with no timeout. Now the terminal's PTY holder
(rebench-termhold) runs outside the sandbox as the terminal user and records what it reads.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import stat
import time
from pathlib import Path

import pytest
from channels.db import database_sync_to_async

from tests.hostile.conftest import ROOT_ONLY
from tests.hostile.shell import close, open_shell, run
from tests.trials import terminal_support as ts
from trials import recording
from trials.models import Attempt, TerminalSession

pytestmark = [ROOT_ONLY, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def recording_of(attempt: Attempt) -> str:
    return TerminalSession.objects.get(attempt=attempt, number=1).recording_name


@ts.sync
async def test_the_shell_cannot_stop_reach_or_bypass_what_holds_and_records_its_terminal(attempt: Attempt) -> None:
    from workstation import layout

    screen = await open_shell(attempt)
    socket = layout.terminals_dir(attempt.pk) / "terminal-1.sock"
    out = await run(
        screen,
        # The holder (its process, its socket, its folder) and the tmux of the days before it.
        "pkill -f rebench-termhold; echo PKILL=$?; "
        f"ls {layout.terminals_root()} 2>&1; echo LS=$?; "
        "python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); "
        f's.connect("{socket}"); print("REACHED", 6*7)\''
        " 2>&1 | tail -1; "
        f"tmux -L {layout.sandbox_name(attempt.pk)} kill-server 2>&1; echo KILL=$?",
    )
    assert "PKILL=1" in out, out  # no such process in its view to signal
    assert "LS=0" not in out, out  # the terminals' folder isn't in the sandbox's view
    assert "REACHED 42" not in out, out  # its socket is out of reach
    assert "KILL=0" not in out, out  # no tmux server holds it (none is in its view, if tmux is)
    # Still held and recorded, every byte of what follows.
    await run(screen, "echo HIDDEN$((6*7))WORK")
    await asyncio.sleep(0.5)
    await close(screen)
    name = await database_sync_to_async(recording_of)(attempt)
    _header, events = await asyncio.to_thread(recording.read_cast, name)
    printed = "".join(e[2] for e in events if e[1] == "o")
    assert "HIDDEN42WORK" in printed


@ts.sync
async def test_recordings_are_nobody_elses_to_read_on_the_host(attempt: Attempt, settings) -> None:
    """Spool files and stored parts are root's (the output stream the terminal user's), never readable by others."""
    settings.TERMINAL_RECORDING_UPLOAD_SECONDS = 0.5
    screen = await open_shell(attempt)
    await run(screen, "echo SECRET$((6*7))TYPED")
    await asyncio.sleep(1.5)
    await close(screen)
    name = await database_sync_to_async(recording_of)(attempt)
    await asyncio.to_thread(recording.upload_closed_chunks, name)
    paths = [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]
    paths += [p for p in Path(settings.TERMINAL_RECORDING_SPOOL).rglob("*") if p.is_file()]
    assert paths, "something was recorded"
    for path in paths:
        # No read or write for the group or others: not the expert's, not another attempt's.
        assert stat.S_IMODE(path.stat().st_mode) & 0o066 == 0, (path, oct(path.stat().st_mode))


@ts.sync
async def test_an_expert_cannot_hold_the_accounts_lock_and_no_one_waits_for_it_forever(
    attempt: Attempt, settings
) -> None:
    from workstation import layout, users

    screen = await open_shell(attempt)
    # Where the lock used to be, and where it is now: the shell can take neither.
    out = await run(
        screen,
        "flock -x -n /tmp/rebench-unix-users.lock true; echo OLD=$?; "
        f"flock -x -n {layout.lock_dir() / 'unix-users.lock'} true 2>&1; echo NEW=$?",
    )
    await close(screen)
    assert "NEW=" in out, out
    assert "NEW=0" not in out, out  # not even in its view
    lock = layout.lock_dir()
    assert stat.S_IMODE(lock.stat().st_mode) == 0o700
    assert lock.stat().st_uid == 0
    # Even held by someone on the host, the wait for it is bounded (never a starved server).
    fd = os.open(lock / "unix-users.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        settings.TERMINAL_ATTEMPT_USER_PREFIX = f"{settings.TERMINAL_ATTEMPT_USER_PREFIX}lk"
        began = time.monotonic()
        with pytest.raises(users.UnixUserError, match="lock"):
            await asyncio.to_thread(_with_short_lock, users)
        assert time.monotonic() - began < 5
    finally:
        os.close(fd)


def _with_short_lock(users) -> None:
    saved = users.LOCK_SECONDS
    users.LOCK_SECONDS = 1.0
    try:
        users.attempt_user(987654)
    finally:
        users.LOCK_SECONDS = saved
