"""What an import leaves behind: final scores as grading computes them, and a leaderboard recompute when it succeeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from graders.models import AttemptScore
from tests.graders.run_import_formats_support import CHAT_RL, _environments, run_import
from tests.graders.run_import_support import metr_row, write_jsonl
from trials.models import Attempt

pytestmark = pytest.mark.django_db

__all__ = ["_environments"]  # the support module's autouse fixture, registered by import


def test_a_successful_import_asks_for_a_leaderboard_recompute_after_commit(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    path = write_jsonl(tmp_path / "runs.jsonl", [metr_row("r1")])
    with django_capture_on_commit_callbacks() as callbacks:
        run_import(path)
    assert "_mark_dirty_and_schedule" in [getattr(c, "__name__", "") for c in callbacks]


def test_a_refused_import_asks_for_no_recompute(tmp_path: Path, django_capture_on_commit_callbacks: Any) -> None:
    path = write_jsonl(tmp_path / "runs.jsonl", [metr_row("r1"), metr_row("r1")])
    with django_capture_on_commit_callbacks() as callbacks:
        run_import(path)
    assert "_mark_dirty_and_schedule" not in [getattr(c, "__name__", "") for c in callbacks]


def test_the_bulk_written_final_scores_equal_what_grading_computes_from_the_log(tmp_path: Path) -> None:
    from graders.services import attempt_score_update

    rows = [metr_row(f"m{i}", score_cont=[0.1, None, 1.4, -0.3][i % 4]) for i in range(12)]
    rows += [metr_row(f"c{i}", task_family=CHAT_RL, task_id=f"{CHAT_RL}/main", score_cont=i / 10) for i in range(5)]
    run_import(write_jsonl(tmp_path / "runs.jsonl", rows))
    imported = {s.attempt_id: (s.raw, s.normalised, s.valid_entries) for s in AttemptScore.objects.all()}

    for attempt in Attempt.objects.all():
        again = attempt_score_update(attempt=attempt, is_final=True)
        assert (again.raw, again.normalised, again.valid_entries) == imported[attempt.pk]
    assert len(imported) == 17
