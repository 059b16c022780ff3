"""Importing runs from files: Inspect eval logs (written by inspect_ai itself), METR runs JSONL, our JSONL/CSV."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from graders.imports import services
from graders.imports.models import RunImport
from graders.models import AttemptScore, ScoreLogEntry
from tests import factories
from tests.graders.run_import_support import metr_row, write_inspect_log, write_jsonl
from trials.models import Attempt

pytestmark = pytest.mark.django_db

CHAT_RL = "ai_rd_nanogpt_chat_rl"  # higher is better, aggregate max: start 0.54, reference 0.85
CUMSUM = "ai_rd_triton_cumsum"  # lower is better, aggregate min


@pytest.fixture(autouse=True)
def _environments(db, settings, tmp_path):
    factories.environment()  # syncs all seven built-in environments
    settings.MEDIA_ROOT = tmp_path / "media"


def run_import(path: Path, kind: str = "auto") -> RunImport:
    """The import as the Celery job does it, minus the queue (the worker test covers that)."""
    with path.open("rb") as handle:
        created = services.run_import_create(
            upload=handle, name=path.name, size=path.stat().st_size, kind=kind, by=None, queue=False
        )
    return services.run_import_execute(run_import_id=created.pk)


def log_of(attempt: Attempt) -> list[tuple[float, float | None]]:
    return [(e.elapsed_seconds, e.score) for e in attempt.score_log.order_by("elapsed_seconds", "pk")]


# --- Inspect ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inspect_eval_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_inspect_log(tmp_path_factory.mktemp("inspect"), environment=CHAT_RL)


def test_an_inspect_log_written_by_inspect_ai_imports_each_sample_as_a_run_with_its_score_log(
    inspect_eval_log: Path,
) -> None:
    result = run_import(inspect_eval_log)

    assert (result.status, result.detected_kind) == ("done", "inspect"), result.error
    assert (result.runs_created, result.runs_updated, result.entries_written) == (2, 0, 4)
    runs = list(Attempt.objects.filter(source="inspect").select_related("environment", "final_score"))
    assert len(runs) == 2
    for run in runs:
        assert run.participant_kind == "agent"
        assert run.environment.slug == CHAT_RL
        assert run.agent_model == "mockllm/model"
        assert run.agent_name == "work_and_score_midway"
        assert (run.status, run.end_reason) == ("ended", "imported")
        assert (run.user_id, run.reservation_id, run.workstation_id) == (None, None, None)
        assert run.time_limit.total_seconds() > 0  # the sample's working time
        entries = log_of(run)
        assert [score for _, score in entries] in ([2.5, 3.5], [3.0, 4.0])
        assert entries[0][0] <= entries[1][0] <= run.time_limit.total_seconds()
        # The final score is the environment's aggregate (max here) of the imported log.
        assert run.final_score.raw == max(score for _, score in entries)
        assert run.final_score.is_final
        # Normalised with the constants of the configuration it was imported at: full, as nothing named another.
        scale = run.configuration
        assert scale.name == "full"
        expected = (run.final_score.raw - scale.starting_score) / (scale.reference_score - scale.starting_score)
        assert run.final_score.normalised == pytest.approx(max(0.0, expected))
    messages = set(ScoreLogEntry.objects.values_list("message", flat=True))
    assert {"after 1 turns", "after 2 turns"} <= messages


def test_the_run_length_of_an_inspect_sample_is_the_evals_working_limit_when_it_set_one(tmp_path: Path) -> None:
    path = write_inspect_log(tmp_path, environment=CHAT_RL, log_format="json", working_limit=3600)
    assert path.suffix == ".json"

    result = run_import(path)

    assert result.status == "done", result.error
    assert {a.time_limit.total_seconds() for a in Attempt.objects.filter(source="inspect")} == {3600.0}


def test_reimporting_the_same_inspect_log_updates_its_runs_instead_of_adding_any(inspect_eval_log: Path) -> None:
    first = run_import(inspect_eval_log)
    before = {a.external_id: log_of(a) for a in Attempt.objects.filter(source="inspect")}

    again = run_import(inspect_eval_log)

    assert (first.runs_created, again.runs_created, again.runs_updated) == (2, 0, 2)
    assert Attempt.objects.filter(source="inspect").count() == 2
    assert ScoreLogEntry.objects.count() == 4
    assert {a.external_id: log_of(a) for a in Attempt.objects.filter(source="inspect")} == before


def test_the_human_agents_scorings_store_becomes_the_score_log_of_a_human_run(
    inspect_eval_log: Path, tmp_path: Path
) -> None:
    from inspect_ai.log import read_eval_log, write_eval_log

    log = read_eval_log(str(inspect_eval_log))
    # What Inspect's human agent keeps: `task score` results with the working time they were taken at.
    log.samples[0].store = {
        "HumanAgentState:scorings": [
            {"time": 600.0, "scores": [{"value": 0.6, "explanation": "first try"}]},
            {"time": 1200.0, "scores": [{"value": "NaN", "explanation": "crashed"}]},
            {"time": 1800.0, "scores": [{"value": 0.7, "explanation": "better"}]},
        ],
        "HumanAgentState:running_state": False,
    }
    log.samples[0].working_time = 3000.0
    log.samples[0].metadata = {"participant": "expert-17"}
    log.samples = log.samples[:1]
    edited = tmp_path / "human.eval"
    write_eval_log(log, str(edited))

    result = run_import(edited)

    assert result.status == "done", result.error
    run = Attempt.objects.select_related("final_score").get(source="inspect")
    assert (run.participant_kind, run.participant_label, run.agent_model) == ("human", "expert-17", "")
    assert run.time_limit.total_seconds() == 3000.0
    # Three scorings (one invalid) and the sample's final score at the end of the working time.
    final = next(iter(log.samples[0].scores.values())).value
    assert log_of(run) == [(600.0, 0.6), (1200.0, None), (1800.0, 0.7), (3000.0, final)]
    assert run.final_score.valid_entries == 3


def test_a_truncated_eval_archive_is_refused_and_nothing_is_written(inspect_eval_log: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "cut.eval"
    truncated.write_bytes(inspect_eval_log.read_bytes()[: inspect_eval_log.stat().st_size // 2])

    result = run_import(truncated)

    assert result.status == "failed"
    assert result.error_field == "file"
    assert "truncated or corrupt" in result.error
    assert not Attempt.objects.exists()


def test_an_inspect_sample_for_an_unknown_environment_is_refused_naming_the_sample(tmp_path: Path) -> None:
    path = write_inspect_log(tmp_path, environment="no_such_environment")

    result = run_import(path)

    assert (result.status, result.error_line, result.error_field) == ("failed", 1, "environment")
    assert "no_such_environment" in result.error
    assert not Attempt.objects.exists()


# --- METR runs JSONL ----------------------------------------------------------------------------------


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


# --- our own format ------------------------------------------------------------------------------------


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


# --- limits and the command ------------------------------------------------------------------------------


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


@pytest.mark.parametrize("started_at", [datetime(2024, 10, 1, 10, 0), "2024-10-01T10:00:00"])
def test_an_inspect_sample_whose_start_names_no_time_zone_started_in_utc(started_at) -> None:
    from graders.imports.formats.inspect_logs import _sample_start

    sample = SimpleNamespace(started_at=started_at)
    assert _sample_start(sample, None) == datetime(2024, 10, 1, 10, 0, tzinfo=UTC)
