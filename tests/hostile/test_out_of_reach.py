"""What an expert's shell can't see: the database, the site's code and references, recordings, scorers, other attempts.

Before the sandbox, every one of these was a path away from the shell: the SQLite database (every
API token, session and hidden score), the world-readable checkout (`cat` of the scaling law's
reference answer scored 1.0), other people's recordings. Inside the sandbox they are not in its
view at all.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import needs_bwrap
from tests.hostile.conftest import ROOT_ONLY
from tests.hostile.shell import close, open_shell, run
from tests.trials import terminal_support as ts
from trials.models import Attempt

pytestmark = [ROOT_ONLY, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@ts.sync
async def test_the_database_code_references_recordings_scorers_and_other_attempts_are_not_in_the_shells_view(
    attempt: Attempt, another_attempt: Attempt, term_dirs: Path
) -> None:
    from workstation import layout

    # Another attempt's workspace with work in it, and its terminal's recording under way.
    theirs = await open_shell(another_attempt)
    await run(theirs, "echo their-secret-work > notes.txt")
    await close(theirs)
    reference = Path(settings.BASE_DIR) / "environments" / "ai_rd_small_scaling_law" / "reference" / "answer.json"
    assert reference.is_file()
    database = Path(settings.DATABASES["default"]["NAME"])
    targets = {
        "the database": database if database.is_absolute() else Path(settings.DATA_DIR) / "db.sqlite3",
        "the data folder": Path(settings.DATA_DIR),
        "the site's code": Path(settings.BASE_DIR) / "rebench_site" / "settings" / "core.py",
        "a reference answer": reference,
        "the protected folder": Path(settings.PROTECTED_DIR),
        "recordings in storage": Path(settings.MEDIA_ROOT),
        "the recording spool": Path(settings.TERMINAL_RECORDING_SPOOL),
        "another attempt's workspace": layout.workspace(another_attempt.pk) / "notes.txt",
        "the sandboxes' state": layout.sandbox_dir(another_attempt.pk),
    }
    screen = await open_shell(attempt)
    for what, path in targets.items():
        out = await run(screen, f"cat {path} 2>&1 | head -c 300; ls -d {path} 2>&1")
        assert "No such file or directory" in out, (what, out)
        assert "their-secret-work" not in out, what
        assert "loss_prediction" not in out, what
    # Nor anywhere else in its view: a search of everything it can read (but the system's and the
    # Python packages' read-only folders) finds none of it, nor the site's secret key.
    found = await run(
        screen,
        "grep -rIl --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev --exclude-dir=usr --exclude-dir=python "
        f"-e their-secret-work -e loss_prediction -e '{settings.SECRET_KEY}' / 2>/dev/null | head",
        timeout=120,
    )
    assert found.strip() == "", found
    await close(screen)


@needs_bwrap  # manage.py's checks refuse to run where attempts can't be sandboxed
def test_the_database_the_server_creates_as_root_is_its_alone(open_tmp: Path) -> None:
    """A fresh SQLite database (and the data folder) made by `manage.py migrate` as root: 0600 and 0711."""
    data = open_tmp / "data"
    env = {**os.environ, "DATA_DIR": str(data), "DATABASE_URL": "", "PYTHONPATH": str(settings.BASE_DIR)}
    env.pop("DATABASE_URL")
    subprocess.run(
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "migrate", "--noinput", "-v", "0"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    database = data / "db.sqlite3"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o711
    # Another user on the host can't read it (no sandbox needed for this one).
    nobody = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", str(database)],
        capture_output=True,
        check=False,
    )
    assert nobody.returncode != 0
