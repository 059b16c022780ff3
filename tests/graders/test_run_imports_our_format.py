"""Importing runs from our own JSONL/CSV: a score log or one score, byte order marks, refusals by line and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.graders.run_import_formats_support import CHAT_RL, CUMSUM, _environments, log_of, run_import
from tests.graders.run_import_support import write_jsonl
from trials.models import Attempt

pytestmark = pytest.mark.django_db

__all__ = ["_environments"]  # the support module's autouse fixture, registered by import


def test_our_jsonl_format_imports_runs_with_their_score_logs(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "ours.jsonl",
        [
            {
                "run_id": "a-1",
                "environment": CUMSUM,
                "participant_kind": "agent",
                "agent_name": "o1-preview",
                "agent_model": "o1-preview-2024-09-12",
                "agent_scaffold": "AIDE",
                "time_limit_seconds": 7200,
                "started_at": "2024-10-01T10:00:00+00:00",
                "score_log": [
                    {"elapsed_seconds": 0, "score": 1.5535, "message": "start"},
                    {"elapsed_seconds": 3000, "score": None, "message": "crashed"},
                    {"elapsed_seconds": 6000, "score": 0.9, "message": "faster"},
                ],
            },
            {
                "run_id": "h-1",
                "environment": CUMSUM,
                "participant_kind": "human",
                "participant": "expert 4",
                "time_limit_seconds": 28800,
                "elapsed_seconds": 20000,
                "score": 0.6,
            },
        ],
    )

    result = run_import(path)

    assert (result.status, result.detected_kind, result.runs_created, result.entries_written) == ("done", "file", 2, 4)
    agent = Attempt.objects.select_related("final_score").get(external_id="a-1")
    assert (agent.source, agent.agent_name, agent.agent_scaffold) == ("file", "o1-preview", "AIDE")
    assert log_of(agent) == [(0.0, 1.5535), (3000.0, None), (6000.0, 0.9)]
    assert agent.final_score.raw == 0.9  # min: lower is better in this environment
    assert agent.started_at.isoformat() == "2024-10-01T10:00:00+00:00"
    human = Attempt.objects.get(external_id="h-1")
    assert (human.participant_kind, human.participant_label, human.agent_name) == ("human", "expert 4", "")


def test_our_csv_format_takes_a_score_log_column_or_one_score(tmp_path: Path) -> None:
    path = tmp_path / "ours.csv"
    path.write_text(
        "run_id,environment,participant_kind,participant,time_limit_seconds,score_log,elapsed_seconds,score\n"
        f'c-1,{CHAT_RL},agent,gpt-4o,3600,"[{{""elapsed_seconds"": 60, ""score"": 0.6}}]",,\n'
        f"c-2,{CHAT_RL},agent,gpt-4o,3600,,3600,0.7\n"
    )

    result = run_import(path)

    assert (result.status, result.runs_created) == ("done", 2), result.error
    assert log_of(Attempt.objects.get(external_id="c-1")) == [(60.0, 0.6)]
    assert log_of(Attempt.objects.get(external_id="c-2")) == [(3600.0, 0.7)]
    assert Attempt.objects.get(external_id="c-1").agent_name == "gpt-4o"


@pytest.mark.parametrize(
    ("row", "field", "says"),
    [
        ({"elapsed_seconds": -1, "score": 1}, "elapsed_seconds", "negative"),
        ({"elapsed_seconds": 3601, "score": 1}, "elapsed_seconds", "beyond the run length"),
        ({"score_log": [{"elapsed_seconds": 10, "score": "fast"}]}, "score_log[0].score", "not a number"),
        ({"environment": "nope"}, "environment", "unknown environment"),
        ({"participant_kind": "robot"}, "participant_kind", "not one of"),
        ({"colour": "blue"}, "colour", "unknown column"),
        ({"time_limit_seconds": 0}, "time_limit_seconds", "positive"),
    ],
    ids=["negative-elapsed", "elapsed-beyond-length", "score-not-a-number", "unknown-env", "kind", "column", "length"],
)
def test_a_bad_row_of_our_format_is_refused_naming_line_and_field(
    tmp_path: Path, row: dict[str, Any], field: str, says: str
) -> None:
    good = {"run_id": "ok", "environment": CHAT_RL, "time_limit_seconds": 3600, "score": 0.7, "elapsed_seconds": 10}
    bad = {**good, "run_id": "bad", **row}

    result = run_import(write_jsonl(tmp_path / "ours.jsonl", [good, bad]), kind="file")

    assert (result.status, result.error_line, result.error_field) == ("failed", 2, field), result.error
    assert says in result.error
    assert not Attempt.objects.exists()


@pytest.mark.parametrize("name", ["ours.jsonl", "ours.csv"])
def test_a_file_with_a_byte_order_mark_and_crlf_line_ends_imports_like_any_other(tmp_path: Path, name: str) -> None:
    row = {"run_id": "b-1", "environment": CUMSUM, "participant_kind": "agent", "agent_name": "a"}
    row |= {"time_limit_seconds": "7200", "elapsed_seconds": "60", "score": "0.9"}
    if name.endswith(".jsonl"):
        body = json.dumps(row) + "\r\n"
    else:
        body = ",".join(row) + "\r\n" + ",".join(row.values()) + "\r\n"
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())

    result = run_import(path)

    assert (result.status, result.detected_kind, result.runs_created) == ("done", "file", 1), result.error
    assert log_of(Attempt.objects.get(external_id="b-1")) == [(60.0, 0.9)]


def test_a_csv_row_cut_short_is_refused_with_its_line_not_imported_as_an_invalid_run(tmp_path: Path) -> None:
    path = tmp_path / "ours.csv"
    path.write_text(
        "run_id,environment,participant_kind,agent_name,time_limit_seconds,elapsed_seconds,score\n"
        f"c-1,{CUMSUM},agent,a,7200,60,0.9\n"
        f"c-2,{CUMSUM},agent,a,7200\n"
    )

    result = run_import(path)

    assert (result.status, result.error_line) == ("failed", 3)
    assert "fewer cells than the header" in result.error
    assert not Attempt.objects.exists()
