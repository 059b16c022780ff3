"""Importing runs from Inspect eval logs (written by inspect_ai itself): samples, human scorings, refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from graders.models import ScoreLogEntry
from tests.graders.run_import_formats_support import CHAT_RL, _environments, log_of, run_import
from tests.graders.run_import_support import write_inspect_log
from trials.models import Attempt

pytestmark = pytest.mark.django_db

__all__ = ["_environments"]  # the support module's autouse fixture, registered by import


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
        assert run.final_score.raw == max(score for _, score in entries if score is not None)
        assert run.final_score.is_final
        # Normalised with the constants of the configuration it was imported at: full, as nothing named another.
        scale = run.configuration
        assert scale.name == "full"
        assert run.final_score.raw is not None
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
    assert log.samples is not None
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


@pytest.mark.parametrize("started_at", [datetime(2024, 10, 1, 10, 0), "2024-10-01T10:00:00"])
def test_an_inspect_sample_whose_start_names_no_time_zone_started_in_utc(started_at) -> None:
    from graders.imports.formats.inspect_logs import _sample_start

    sample = SimpleNamespace(started_at=started_at)
    assert _sample_start(sample, None) == datetime(2024, 10, 1, 10, 0, tzinfo=UTC)
