"""Local shells run as their attempt's own Unix user, in its sandbox: another attempt's workspace isn't even there."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
from channels.db import database_sync_to_async

from tests import factories
from tests.trials import terminal_support as ts
from tests.workspace_support import put
from trials.models import Workstation
from workstation import layout, scoring
from workstation import users as unix_users
from workstation.backends.local import end_attempt_sync, prepare_workspace

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="per-attempt users need root")


def router():
    from channels.routing import URLRouter

    from rebench_site.routing import websocket_urlpatterns

    return URLRouter(websocket_urlpatterns)


@pytest.fixture
def term_dirs(settings):
    root = ts.make_dirs(settings)
    settings.PROTECTED_DIR = root / "protected"
    yield root
    ts.cleanup_dirs(root)


@pytest.fixture
def two_attempts(term_dirs):
    attempts = [
        factories.AttemptFactory.create(
            reservation__workstation__backend=Workstation.Backend.LOCAL,
            reservation__workstation__name=f"local-{n}",
        )
        for n in range(2)
    ]
    yield attempts
    for attempt in attempts:
        end_attempt_sync(attempt.pk)


@ROOT_ONLY
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
@ts.sync
async def test_an_attempts_shell_runs_as_its_own_user_and_cannot_read_another_attempts_workspace(
    two_attempts, term_dirs
) -> None:
    mine, theirs = two_attempts
    # Their workspace, as their terminal or worker makes it; a secret in it, and a protected scorer copy.
    their_user = await database_sync_to_async(unix_users.attempt_user)(theirs.pk)
    their_workspace = await database_sync_to_async(prepare_workspace)(theirs.pk, their_user)
    put(their_workspace, "secret.txt", "their work")
    await database_sync_to_async(scoring.ensure_protected_group)()

    def write_scorer(target: Path) -> None:
        target.mkdir(parents=True)
        (target / "score.py").write_text("SCORING CODE")

    scorer = scoring.fresh_copy(
        write_scorer,
        term_dirs / "protected" / "scorers" / "probe",
        protected=True,
    )
    for folder in (term_dirs / "protected", term_dirs / "protected" / "scorers"):
        folder.chmod(0o755)

    screen = await ts.open_screen(router(), mine.pk, mine.user)
    await screen.ready()
    start = len(screen.output)
    await screen.type(f"echo who:$(id -un):$(id -G | wc -w); cat {their_workspace}/secret.txt {scorer}/score.py\r")
    await screen.until("No such file", start=start)
    await screen.until(ts.PROMPT, start=start + 1)
    out = screen.output[start:].decode(errors="replace")
    await screen.comm.disconnect()

    assert f"who:{unix_users.attempt_user_name(mine.pk)}:1" in out  # its own user, its own group only
    assert out.count("No such file or directory") == 2  # neither is in its sandbox at all
    assert "their work" not in out
    assert "SCORING CODE" not in out
    assert layout.workspace(mine.pk).stat().st_uid == pwd.getpwnam(unix_users.attempt_user_name(mine.pk)).pw_uid
    assert their_user.uid != pwd.getpwnam(unix_users.attempt_user_name(mine.pk)).pw_uid


@ROOT_ONLY
def test_with_per_attempt_users_off_every_attempt_shares_the_local_user(settings) -> None:
    settings.TERMINAL_ATTEMPT_USERS = False
    assert unix_users.attempt_user(1) == unix_users.attempt_user(2) == unix_users.shared_user()
    assert unix_users.attempt_user(1).name == settings.TERMINAL_LOCAL_USER
    assert unix_users.attempt_user(1).uid != 0


@pytest.mark.skipif(os.geteuid() == 0, reason="the non-root path: run the tests as an ordinary user to see it")
def test_not_root_every_attempt_runs_as_the_servers_own_user() -> None:
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert unix_users.attempt_user(1).name == me
    assert unix_users.tmux_user().name == me
    assert unix_users.attempt_user_retire(1) is False


@ROOT_ONLY
def test_retiring_waits_out_another_process_holding_the_passwd_lock(term_dirs) -> None:
    """usermod fails at once while another useradd or usermod holds /etc/passwd.lock (as parallel
    attempts' and test workers' do): retiring retries instead of leaving the account open."""
    import threading
    import time

    attempt_id = 987650
    user = unix_users.attempt_user(attempt_id)
    lock = Path("/etc/passwd.lock")
    staged = Path(f"/etc/passwd.lock.{os.getpid()}")
    staged.write_text(f"{os.getpid()}")
    os.link(staged, lock)  # as shadow-utils takes it: a link to a file holding a live pid
    staged.unlink()
    release = threading.Timer(0.6, lock.unlink)
    release.start()
    try:
        began = time.monotonic()
        assert unix_users.attempt_user_retire(attempt_id)
        assert time.monotonic() - began >= 0.5  # it waited for the lock
        assert unix_users._expired(user.name)
    finally:
        release.join()
        if lock.exists() and lock.read_text().strip() == str(os.getpid()):
            lock.unlink()
