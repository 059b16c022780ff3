"""Can this machine sandbox attempts? What the report says about folders attempt users can't enter."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from workstation import capabilities

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root switches to attempt users")


@pytest.fixture
def base() -> Iterator[Path]:
    """An open folder of this test's (pytest's own tmp_path sits under root's closed /tmp/pytest-of-root)."""
    folder = Path(tempfile.mkdtemp(prefix="rebench-reach-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_workspace_root_under_a_closed_folder_is_named_with_the_fix(settings, base: Path) -> None:
    home = base / "home"
    (home / "checkout" / "data" / "workspaces").mkdir(parents=True)
    home.chmod(0o700)
    settings.TERMINAL_WORKSPACE_ROOT = home / "checkout" / "data" / "workspaces"

    found = capabilities.unreachable_folders()

    assert any(f"can't enter {home} (mode 700)" in p and "chmod o+x" in p for p in found), found
    assert not capabilities.local_report(fresh=True).ok


def test_reachable_folders_say_nothing(settings, base: Path) -> None:
    root = base / "open" / "workspaces"
    root.mkdir(parents=True)
    for folder in (base / "open", root):
        folder.chmod(0o755)
    settings.TERMINAL_WORKSPACE_ROOT = root
    settings.SANDBOX_SHARE_PYTHON_PACKAGES = False
    assert capabilities.unreachable_folders() == []
