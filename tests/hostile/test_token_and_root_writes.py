"""The terminal's credential never travels through a path the expert controls, and no root write follows their links.

Before the sandbox, opening a terminal tab made the server (as root) write the tab's token into
`~/.rebench/tokens/` of the shell's user, following whatever links the expert had planted there:
a link to a root-only file got that file overwritten and handed to the expert.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from channels.db import database_sync_to_async

from tests.hostile.conftest import ROOT_ONLY
from tests.hostile.shell import close, open_shell, run
from tests.trials import terminal_support as ts
from trials.models import Attempt, AttemptToken

pytestmark = [ROOT_ONLY, pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


def fingerprint(path: Path) -> tuple[str, int, int, int]:
    info = path.lstat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), info.st_uid, info.st_gid, info.st_mode


@ts.sync
async def test_links_planted_where_tokens_used_to_go_are_never_written_through(
    attempt: Attempt, tmp_path: Path
) -> None:
    # A root-only file of the host, standing in for /etc/shadow.
    victim = tmp_path / "root-only"
    victim.write_text("root's secret\n")
    victim.chmod(0o600)
    before = fingerprint(victim)
    screen = await open_shell(attempt)
    out = await run(
        screen,
        f"mkdir -p ~/.rebench/tokens && ln -sf {victim} ~/.rebench/tokens/attempt-{attempt.pk}-terminal-2 "
        f"&& ln -sfn {tmp_path} ~/.rebench/tokens-dir && echo PLANTED",
    )
    assert "PLANTED" in out
    # Opening tab 2 starts a new shell: a new credential is issued and delivered.
    second = await open_shell(attempt, number=2)
    assert fingerprint(victim) == before, "root wrote through the expert's link"
    assert not (tmp_path / f"attempt-{attempt.pk}-terminal-2").exists()
    await close(second)
    await close(screen)


@ts.sync
async def test_the_shell_never_holds_the_terminal_credential(attempt: Attempt) -> None:
    screen = await open_shell(attempt)
    # Whatever the shell can see: its environment, its home, /tmp, /run.
    out = await run(screen, "env; ls -la ~ ~/.rebench /run /run/rebench 2>&1; cat ~/.rebench/tokens/* 2>&1")
    await close(screen)
    tokens = await database_sync_to_async(lambda: AttemptToken.objects.filter(attempt=attempt).count())()
    assert tokens >= 1, "the terminal was issued a credential"
    assert "REBENCH_TOKEN" not in out
    assert "tokens/attempt-" not in out


def test_a_planted_link_in_the_workspace_is_not_followed_when_the_starting_files_go_in(
    attempt: Attempt, tmp_path: Path
) -> None:
    """The starting solution is copied in by the attempt's own user, never by root through a link."""
    from graders import services
    from workstation import layout

    # Where a root-run cron, a root-owned config or a shell profile would be: nothing there yet.
    target = tmp_path / "created-by-root"
    workspace = layout.workspace(attempt.pk)
    workspace.mkdir(parents=True, exist_ok=True)
    os.chmod(workspace.parent, 0o711)  # noqa: S103 - as the site makes it: crossable, not listable
    # The expert was quicker than the worker: solution.py is already a dangling link to that place.
    os.symlink(target, workspace / "solution.py")
    services.workspace_prepare(attempt=attempt)
    assert not target.exists(), "root created a file where the expert's link pointed"
    assert os.path.islink(workspace / "solution.py"), "an existing name is never replaced"
