"""ai_rd_optimize_llm_foundry, small configuration: timed finetune.sh, weights checked against the reference."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings

from environments import packages
from graders import services
from tests.environments.scoring_support import (
    copy_into,
    run_scorer,
    score_now,
    small_configuration,
    started_template,
    wait_for_entries,
    worker_for,
)
from tests.factories import preparing
from trials.models import Attempt
from workstation import layout

SLUG = "ai_rd_optimize_llm_foundry"
PACKAGE = Path(settings.BASE_DIR) / "environments" / SLUG

pytestmark = [pytest.mark.timeout(900), pytest.mark.usefixtures("small_configuration")]
__all__ = ["small_configuration"]


@pytest.mark.django_db(transaction=True)
def test_the_worker_times_the_starting_and_reference_scripts_and_refuses_changed_weights(
    attempt_on: Callable[..., Attempt], tmp_path: Path
) -> None:
    attempt = preparing(attempt_on(SLUG))
    small = packages.find(SLUG).configurations["small"]
    assert attempt.environment.reference_score == small.reference_score
    workspace = layout.workspace(attempt.pk)
    with worker_for(attempt, tmp_path):
        services.workspace_prepare_queue(attempt)
        # Preparing trains the base model on a cold cache: minutes on a loaded machine.
        start = wait_for_entries(attempt, 1, timeout=600)[0]
        assert start.details.get("l1_distance") == 0.0, (start.message, start.details)
        # Timed from outside the harness instance that ran it, not by anything the script could touch.
        assert start.details["timed_by"] == "workstation"
        # Wall time on a shared 2-core CPU moves with the load (measured 13.7 s at load 4.5, 24.4 s
        # at 9): near the declared figure, within a factor of e^1.2 ≈ 3.3, not equal to it.
        assert start.score == pytest.approx(small.starting_score, abs=1.2)

        copy_into(PACKAGE / "reference", workspace)
        reference = score_now(attempt, 2)
        assert 0 < reference.details.get("l1_distance", -1) <= reference.details["l1_tolerance"], reference.message
        assert reference.score == pytest.approx(small.reference_score, abs=1.2)
        assert reference.score is not None
        assert start.score is not None
        assert reference.score < start.score

        # Faster, but it computes something else: a learning rate 1 % off.
        source = (workspace / "finetune.py").read_text().replace("LR = 1e-3", "LR = 1.01e-3")
        (workspace / "finetune.py").write_text(source)
        broken = score_now(attempt, 3)
        assert broken.score is None
        assert "differ from the reference by L1" in broken.message
        assert broken.details["l1_distance"] > 10 * broken.details["l1_tolerance"]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with started_template(SLUG, tmp_path_factory.mktemp("llm-foundry")) as workspace:
        yield workspace


@pytest.fixture
def workspace(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "ws", symlinks=True))


def test_a_failing_script_is_nan_with_its_last_words(workspace: Path, tmp_path: Path) -> None:
    (workspace / "finetune.sh").write_text("echo 'out of GPUs' >&2\nexit 3\n")
    result = run_scorer(SLUG, workspace, tmp_path)
    assert result["score"] is None
    assert result["message"] == "finetune.sh failed (exit status 3): out of GPUs"


def test_a_result_left_from_an_earlier_run_does_not_count(workspace: Path, tmp_path: Path) -> None:
    (workspace / "trained_model").mkdir()
    shutil.copy2(workspace / "base_model.pth", workspace / "trained_model" / "model.pth")
    (workspace / "finetune.sh").write_text("true\n")
    result = run_scorer(SLUG, workspace, tmp_path)
    assert result["score"] is None
    assert result["message"] == "finetune.sh finished but wrote no trained_model/model.pth."


def test_the_base_model_passed_off_as_the_result_is_refused_by_its_distance(workspace: Path, tmp_path: Path) -> None:
    (workspace / "finetune.sh").write_text("mkdir -p trained_model && cp base_model.pth trained_model/model.pth\n")
    result = run_scorer(SLUG, workspace, tmp_path)
    assert result["score"] is None
    assert "differ from the reference by L1" in result["message"]


def test_without_finetune_sh_nothing_runs_and_the_message_says_so(workspace: Path, tmp_path: Path) -> None:
    (workspace / "finetune.sh").unlink()
    result = run_scorer(SLUG, workspace, tmp_path)
    assert result["score"] is None
    assert result["message"] == "No finetune.sh in the workspace."


def test_the_checkpoint_comes_back_dereferenced_and_a_pipe_in_its_place_is_no_checkpoint(
    workspace: Path, tmp_path: Path
) -> None:
    # A link is followed (as the expert's user, inside the sandbox): what it points to is weighed.
    (workspace / "finetune.sh").write_text(
        "mkdir -p trained_model && ln -s ../base_model.pth trained_model/model.pth\n"
    )
    linked = run_scorer(SLUG, workspace, tmp_path)
    assert "differ from the reference by L1" in linked["message"], linked["message"]
    # A pipe is neither read (it would block) nor passed off as a file.
    (workspace / "finetune.sh").write_text("mkdir -p trained_model && mkfifo trained_model/model.pth\n")
    piped = run_scorer(SLUG, workspace, tmp_path)
    assert piped["message"] == "finetune.sh finished but wrote no trained_model/model.pth."


def test_an_output_that_is_not_a_checkpoint_is_nan(workspace: Path, tmp_path: Path) -> None:
    (workspace / "finetune.sh").write_text("mkdir -p trained_model && echo weights > trained_model/model.pth\n")
    result = run_scorer(SLUG, workspace, tmp_path)
    assert result["score"] is None
    assert "is not a checkpoint torch can read" in result["message"]


def test_full_scale_without_the_task_folder_stops_the_start_naming_the_setting(settings, tmp_path: Path) -> None:
    settings.ENVIRONMENT_CONFIGURATION_OVERRIDES = {SLUG: "full"}
    settings.ENVIRONMENT_LLM_FOUNDRY_DIR = ""
    (tmp_path / "ws").mkdir()
    with pytest.raises(packages.ConfigurationError, match="needs ENVIRONMENT_LLM_FOUNDRY_DIR"):
        packages.find(SLUG).prepare_staging(tmp_path / "ws")
