"""Tests that need bubblewrap or Debian's rustc are skipped, saying why, where the machine lacks one."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests import conftest
from tests.trials import terminal_support as ts

REAL_WHICH = shutil.which


def without(monkeypatch: pytest.MonkeyPatch, *tools: str) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name in tools else REAL_WHICH(name, *a, **k))


def test_a_missing_bubblewrap_skips_a_terminal_test_naming_the_package(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    without(monkeypatch, "bwrap")
    made = set(Path("/tmp").glob("rebench-term-*"))  # noqa: S108 - where make_dirs would make its folder
    with pytest.raises(pytest.skip.Exception, match=r"bubblewrap is missing \(apt-get install bubblewrap\)"):
        ts.make_dirs(settings)
    assert set(Path("/tmp").glob("rebench-term-*")) <= made  # skipped before making anything  # noqa: S108


def test_a_missing_bubblewrap_and_rustc_are_both_named(monkeypatch: pytest.MonkeyPatch) -> None:
    without(monkeypatch, "bwrap")
    monkeypatch.setattr(conftest, "DEBIAN_RUSTC", "/nonexistent/rustc")
    with pytest.raises(pytest.skip.Exception) as skipped:
        conftest.skip_without("bwrap", "rustc")
    assert "bubblewrap is missing (apt-get install bubblewrap)" in str(skipped.value)
    assert "Debian's rustc is missing (apt-get install rustc)" in str(skipped.value)


def test_a_missing_debian_rustc_is_named_whatever_rustc_is_on_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "DEBIAN_RUSTC", "/nonexistent/rustc")
    assert conftest.tool_missing("rustc") == conftest.MISSING_TOOL_REASONS["rustc"]
    assert "apt-get install rustc" in conftest.MISSING_TOOL_REASONS["rustc"]


@pytest.mark.skipif(
    any(map(conftest.tool_missing, ["bwrap", "rustc"])), reason="this machine lacks one: nothing to compare"
)
def test_where_every_tool_is_present_nothing_is_skipped() -> None:
    conftest.skip_without("bwrap", "rustc")  # returns: no skip
    assert not conftest.needs_bwrap.args[0]
    assert not conftest.needs_rustc.args[0]
