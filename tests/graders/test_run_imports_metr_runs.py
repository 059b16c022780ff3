"""Importing runs from METR runs JSONL: agent and human rows, idempotent reimports, refusals by line and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from graders.models import AttemptScore, ScoreLogEntry
from tests.graders.run_import_formats_support import CHAT_RL, _environments, run_import
from tests.graders.run_import_support import metr_row, write_jsonl
from trials.models import Attempt

pytestmark = pytest.mark.django_db

__all__ = ["_environments"]  # the support module's autouse fixture, registered by import


def test_metr_runs_rows_become_agent_runs_and_human_rows_imported_human_attempts(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "runs.jsonl",
        [
            metr_row("r1", score_cont=0.5),
            metr_row("r2", alias="human", model="human", time_limit=None, human_minutes=300, score_cont=1.25),
            metr_row("r3", task_family=None, task_id=f"{CHAT_RL}/main", score_cont=None, scaffold="triframe"),
        ],
    )

    result = run_import(path)

    assert (result.status, result.detected_kind, result.runs_created) == ("done", "metr_runs", 3), result.error
    agent = Attempt.objects.select_related("final_score", "environment").get(external_id="r1")
    assert (agent.participant_kind, agent.agent_name, agent.agent_model, agent.agent_scaffold) == (
        "agent",
        "Claude 3.5 Sonnet (New)",
        "claude-3-5-sonnet-20241022",
        "modular",
    )
    assert agent.source == "metr_runs"
    assert agent.time_limit.total_seconds() == 28800
    # score_cont is the normalised score: stored on the raw scale, it normalises back to itself.
    assert agent.final_score.normalised == pytest.approx(0.5)
    env = agent.environment
    assert agent.final_score.raw == pytest.approx((env.starting_score + env.reference_score) / 2)
    human = Attempt.objects.select_related("final_score").get(external_id="r2")
    assert (human.participant_kind, human.participant_label, human.agent_name) == ("human", "human", "")
    assert human.time_limit.total_seconds() == 300 * 60
    assert human.final_score.normalised == pytest.approx(1.25)
    no_score = Attempt.objects.select_related("final_score", "environment").get(external_id="r3")
    assert no_score.environment.slug == CHAT_RL  # from the task id's family part
    assert (no_score.final_score.raw, no_score.final_score.valid_entries) == (None, 0)


def test_reimporting_a_metr_runs_file_is_idempotent(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "runs.jsonl", [metr_row("r1"), metr_row("r2", score_cont=0.9)])
    run_import(path)
    starts = dict(Attempt.objects.values_list("external_id", "started_at"))
    write_jsonl(path, [metr_row("r1"), metr_row("r2", score_cont=0.25)])  # the same runs, one rescored

    result = run_import(path)

    assert (result.runs_created, result.runs_updated) == (0, 2)
    assert Attempt.objects.count() == 2
    assert ScoreLogEntry.objects.count() == 2
    assert AttemptScore.objects.get(attempt__external_id="r2").normalised == pytest.approx(0.25)
    # The file gives no start time: the runs keep the one their first import set, so nothing else moved.
    assert dict(Attempt.objects.values_list("external_id", "started_at")) == starts


@pytest.mark.parametrize(
    ("rows", "line", "field", "says"),
    [
        (
            [metr_row("r1"), metr_row("r2", task_family="ai_rd_unknown", task_id="ai_rd_unknown/x")],
            2,
            "task_family",
            "ai_rd_unknown",
        ),
        ([metr_row("r1"), metr_row("r2"), metr_row("r1")], 3, "run_id", "appears twice"),
        ([metr_row("r1", score_cont="abc")], 1, "score_cont", "not a number"),
        ([metr_row("r1", time_limit=None)], 1, "time_limit", "required"),
        (
            [metr_row("r1", alias="human", time_limit=600, human_minutes=20)],
            1,
            "human_minutes",
            "beyond the run length",
        ),
        ([metr_row("")], 1, "run_id", "required"),
    ],
    ids=["unknown-environment", "duplicate-run-id", "score-not-a-number", "no-run-length", "beyond-length", "no-id"],
)
def test_a_bad_metr_runs_file_is_refused_naming_line_and_field_and_writes_nothing(
    tmp_path: Path, rows: list[dict[str, Any]], line: int, field: str, says: str
) -> None:
    result = run_import(write_jsonl(tmp_path / "runs.jsonl", rows), kind="metr_runs")

    assert (result.status, result.error_line, result.error_field) == ("failed", line, field)
    assert says in result.error
    assert not Attempt.objects.exists()
    assert not ScoreLogEntry.objects.exists()


def test_a_line_that_is_not_json_is_refused_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(metr_row("r1")) + "\n{not json\n")

    result = run_import(path, kind="metr_runs")

    assert (result.status, result.error_line, result.error_field) == ("failed", 2, "line")
    assert not Attempt.objects.exists()
