"""The import_runs command: the counts it reports, the line and field it fails with, the size it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from graders.imports.models import RunImport
from tests.graders.run_import_formats_support import _environments
from tests.graders.run_import_support import metr_row, write_jsonl
from trials.models import Attempt

pytestmark = pytest.mark.django_db

__all__ = ["_environments"]  # the support module's autouse fixture, registered by import


def test_a_file_over_200_mb_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024 + 1)  # sparse: no disk used, but that is its size

    with pytest.raises(CommandError, match="imports take at most 200 MiB"):
        call_command("import_runs", str(huge))

    assert not RunImport.objects.exists()
    assert not Attempt.objects.exists()


def test_the_import_runs_command_imports_a_file_and_reports_the_counts(tmp_path: Path, capsys: Any) -> None:
    path = write_jsonl(tmp_path / "runs.jsonl", [metr_row("r1"), metr_row("r2")])

    call_command("import_runs", str(path), "--format", "metr_runs")

    assert "2 new runs, 0 updated, 2 score-log entries" in capsys.readouterr().out
    assert Attempt.objects.filter(source="metr_runs").count() == 2


def test_the_import_runs_command_fails_with_the_line_and_field_of_a_bad_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "runs.jsonl", [metr_row("r1"), metr_row("r1")])

    with pytest.raises(CommandError, match=r"line 2, field run_id.*Nothing was written"):
        call_command("import_runs", str(path))
