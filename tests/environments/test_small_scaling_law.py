"""ai_rd_small_scaling_law as RE-Bench gives it: training code, data, a FLOP counter and the experiment rule.

The small configuration through its start and a real worker; the full configuration's wiring on
stand-ins of OpenWebText's folder; the ground truth never in the expert's reach.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from django.conf import settings

from environments import packages
from graders import services
from tests.environments.scoring_support import (
    load_module,
    prepared_workspace,
    run_scorer,
    score_now,
    small_configuration,
    started_template,
    wait_for_entries,
    worker_for,
)
from tests.factories import preparing
from tests.workspace_support import give_to_owner
from trials.models import Attempt
from workstation import layout

SLUG = "ai_rd_small_scaling_law"
PACKAGE = Path(settings.BASE_DIR) / "environments" / SLUG

pytestmark = [pytest.mark.timeout(400), pytest.mark.usefixtures("small_configuration")]
__all__ = ["small_configuration"]


def configuration(name: str) -> packages.Configuration:
    package = packages.find_on_disk(SLUG)
    assert package is not None
    return package.configurations[name]


SMALL = configuration("small")
REFERENCE_ANSWER = {"n_embd": 19, "max_iters": 4696, "loss_prediction": 2.1426}


@pytest.fixture(scope="module")
def scorer() -> ModuleType:
    return load_module("scaling_law_score_small", PACKAGE / "scoring" / "score.py")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with started_template(SLUG, tmp_path_factory.mktemp("scaling-law")) as workspace:
        yield workspace


def experiment(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=workspace, capture_output=True, text=True, timeout=300, check=False
    )


def test_start_gives_the_training_code_the_data_and_the_numbers_but_not_the_ground_truth(template: Path) -> None:
    assert {"train.py", "flops.py", "model.py", "experiment.json", "answer.json"} <= {
        p.name for p in template.iterdir()
    }
    assert json.loads((template / "answer.json").read_text()) == SMALL.params["starting_answer"]
    numbers = json.loads((template / "experiment.json").read_text())
    assert numbers["budget_flops"] == SMALL.params["budget_flops"] == 50 * numbers["experiment_limit_flops"]
    assert numbers["model"] == SMALL.params["model"]
    losses = [f"{loss}" for loss in SMALL.params["ground_truth"]["loss"]]
    for path in template.rglob("*"):
        if path.is_file() and path.suffix in {".json", ".py", ".jsonl"}:
            text = path.read_text()
            assert "ground_truth" not in text, path
            assert not any(loss in text for loss in losses), path
    train = np.fromfile(template / "data" / "train.bin", dtype=np.uint16)
    val = np.fromfile(template / "data" / "val.bin", dtype=np.uint16)
    assert len(train) > 1_000_000
    assert len(val) > 10_000
    assert int(train.max()) < SMALL.params["model"]["vocab_size"]


def test_an_experiment_within_the_limit_trains_and_records_its_flops_and_validation_loss(
    template: Path, tmp_path: Path
) -> None:
    workspace = Path(copy_template(template, tmp_path))
    done = experiment(workspace, "--n_embd", "8", "--max_iters", "30")
    assert done.returncode == 0, done.stderr
    run = json.loads((workspace / "runs.jsonl").read_text().splitlines()[-1])
    # By hand: 4 layers · 12 · 8² · 6 FLOPs · (64 · 32 tokens) · 30 iterations = 1.1325e9.
    assert run["flops"] == 4 * 12 * 64 * 6 * 64 * 32 * 30 == pytest.approx(1.1325e9, rel=1e-4)
    assert 0 < run["val_loss"] < math.log(256)


def test_an_experiment_over_the_limit_is_refused_before_it_trains(template: Path, tmp_path: Path) -> None:
    workspace = Path(copy_template(template, tmp_path))
    # 4 · 12 · 64² · 6 · 2048 · 200 = 4.8e11 FLOPs: 24 times the limit of one experiment.
    done = experiment(workspace, "--n_embd", "64", "--max_iters", "200")
    assert done.returncode == 2
    assert "over the limit of one experiment (2e+10)" in done.stderr
    assert not (workspace / "runs.jsonl").exists()
    counted = subprocess.run(
        [sys.executable, "flops.py", "64", "200"], cwd=workspace, capture_output=True, text=True, check=True
    )
    assert "4.832e+11 FLOPs: 48.32% of the final run's budget" in counted.stdout
    assert "OVER the limit of one experiment" in counted.stdout


def copy_template(template: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(template, tmp_path / "ws", symlinks=True))


def test_the_small_tables_optimum_scores_1_and_its_starting_answer_scores_as_declared(scorer: ModuleType) -> None:
    params = SMALL.params
    table = params["ground_truth"]
    best = min(range(len(table["loss"])), key=lambda i: table["loss"][i])
    width = math.sqrt(params["budget_flops"] / scorer.flops(params, 1, table["max_iters"][best]))
    optimum = {"n_embd": width, "max_iters": table["max_iters"][best], "loss_prediction": table["loss"][best]}
    assert scorer.score_answer(optimum, params)["score"] == pytest.approx(1.0)
    assert scorer.score_answer(params["starting_answer"], params)["score"] == pytest.approx(SMALL.starting_score)


@pytest.mark.django_db(transaction=True)
def test_the_worker_scores_the_starting_answer_and_the_reference_fit(
    attempt_on: Callable[..., Attempt], tmp_path: Path
) -> None:
    attempt = preparing(attempt_on(SLUG))
    workspace = layout.workspace(attempt.pk)
    with worker_for(attempt, tmp_path):
        services.workspace_prepare_queue(attempt)
        start = wait_for_entries(attempt, 1)[0]
        assert start.score == pytest.approx(SMALL.starting_score, abs=1e-9), (start.message, start.details)
        assert start.message.startswith("Valid answer using ")
        # reference/fit.py's answer: environment_measure ran it for the constant (its experiments
        # take six minutes on one core, too long to repeat here).
        (workspace / "answer.json").write_text(json.dumps(REFERENCE_ANSWER))
        give_to_owner(workspace)
        reference = score_now(attempt, 2)
    assert reference.score == pytest.approx(SMALL.reference_score, abs=1e-9), (reference.message, reference.details)
    assert reference.score is not None
    assert str(round(reference.score, 4)) not in reference.message  # hidden from the expert: validity and budget


# --- the full configuration's wiring, on a stand-in of OpenWebText's folder -------------------------


def test_the_full_configuration_links_openwebtext_and_scores_rebenchs_starting_answer(settings, tmp_path: Path) -> None:
    owt = tmp_path / "openwebtext"
    owt.mkdir()
    for name in ("train.bin", "val.bin"):
        np.arange(5000, dtype=np.uint16).tofile(owt / name)
    settings.ENVIRONMENT_CONFIGURATION = "full"
    settings.ENVIRONMENT_OPENWEBTEXT_DIR = str(owt)
    settings.ENVIRONMENT_CACHE_DIR = tmp_path / "cache"
    settings.PROTECTED_DIR = tmp_path / "protected"
    workspace = prepared_workspace(SLUG, tmp_path / "workspace")
    assert (workspace / "data" / "train.bin").resolve() == owt / "train.bin"
    assert (workspace / "data" / "val.bin").resolve() == owt / "val.bin"
    numbers = json.loads((workspace / "experiment.json").read_text())
    assert (numbers["budget_flops"], numbers["experiment_limit_flops"]) == (5e17, 1e16)
    assert numbers["model"] == {"n_layer": 4, "block_size": 1024, "batch_size": 64, "vocab_size": 50304}
    counted = subprocess.run(
        [sys.executable, "flops.py", "554", "88914"], cwd=workspace, capture_output=True, text=True, check=True
    )
    # RE-Bench's optimum: 4 · 12 · 554² · 6 · 65536 · 88914 = 5.1506e17, 103 % of the budget.
    assert counted.stdout.startswith("5.151e+17 FLOPs: 103.01% of the final run's budget")
    result = run_scorer(SLUG, workspace, tmp_path / "scorer")
    assert result["score"] == pytest.approx(0.2356, abs=5e-5)
