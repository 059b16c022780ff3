"""The cumsum scorer under the Triton interpreter: reference and starting solutions correct, faults named.

The trusted scorer draws fresh inputs and checks every output; the harness runs `prefix_sum`. The
first tests score through the worker's code in the real sandbox; the fault cases call the scorer
in-process with `run_scorer`'s local (unsandboxed) harness.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from graders import services
from graders.models import ScoreLogEntry, ScoringJob
from tests.environments.scoring_support import run_scorer
from tests.workspace_support import put
from trials.models import Attempt
from workstation import layout
from workstation.agent.tasks import scoring_job_run

SLUG = "ai_rd_triton_cumsum"
PACKAGE = Path(settings.BASE_DIR) / "environments" / SLUG

pytestmark = pytest.mark.timeout(180)

WRONG = """
import torch


def prefix_sum(x):
    # Counts elements after an even number of positives: the parity is the wrong way round.
    odd_before = (torch.cumsum(x > 0, 0) % 2).bool()
    out = torch.zeros_like(x)
    if x.numel() > 1:
        out[1:] = torch.where(~odd_before[:-1], x[1:], 0).cumsum(0).to(torch.int32)
    return out
"""


def score_solution(attempt: Attempt, source: str) -> ScoreLogEntry:
    services.workspace_prepare(attempt=attempt)
    put(layout.workspace(attempt.pk), "solution.py", source)
    job = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test")
    scoring_job_run(str(job.pk))
    return ScoreLogEntry.objects.get(job=job)


def test_the_reference_triton_kernel_is_correct_and_no_time_is_made_up_without_a_gpu(
    attempt_on: Callable[..., Attempt],
) -> None:
    entry = score_solution(attempt_on("ai_rd_triton_cumsum"), (PACKAGE / "reference" / "solution.py").read_text())
    assert entry.details.get("correct") is True, entry.message
    assert entry.details["timed"] is False
    assert entry.score is None  # no GPU, no time: never a fake number
    assert "Timing needs a GPU" in entry.message


def test_the_starting_torch_solution_is_correct(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("ai_rd_triton_cumsum")
    job = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test")
    scoring_job_run(str(job.pk))  # the workspace starts with the starting solution
    entry = ScoreLogEntry.objects.get(job=job)
    assert entry.details.get("correct") is True, entry.message


def test_a_wrong_solution_is_a_nan_naming_the_first_mismatching_index(attempt_on: Callable[..., Attempt]) -> None:
    entry = score_solution(attempt_on("ai_rd_triton_cumsum"), WRONG)
    assert entry.score is None
    assert "first mismatch at index" in entry.message
    # No positives at all: nothing counts and the answer is all zeros; element 0 is 0 either way.
    assert entry.details["case"] == "all negative"
    assert entry.details["first_mismatch"] == 1


def test_a_solution_that_does_not_import_is_a_nan_saying_so(attempt_on: Callable[..., Attempt]) -> None:
    entry = score_solution(attempt_on("ai_rd_triton_cumsum"), "import no_such_module\n")
    assert entry.score is None
    assert "failed to import" in entry.message


def score_locally(tmp_path: Path, source: str | None) -> dict[str, Any]:
    """The scorer in-process, its harness run here (unsandboxed), on a workspace holding `source`."""
    workspace = tmp_path / "ws"
    workspace.mkdir(parents=True)
    if source is not None:
        (workspace / "solution.py").write_text(source)
    return run_scorer(SLUG, workspace, tmp_path)


STARTING = (PACKAGE / "solution" / "solution.py").read_text()
FAULTS = {
    "raises": ("def prefix_sum(x):\n    raise ValueError('no kernel yet')\n", "prefix_sum raised on empty: ValueError"),
    "int64": (
        "import torch\n\ndef prefix_sum(x):\n    return torch.zeros(x.shape, dtype=torch.int64)\n",
        "Wrong dtype on empty: torch.int64, expected torch.int32.",
    ),
    "bfloat16": (
        "import torch\n\ndef prefix_sum(x):\n    return torch.zeros(x.shape, dtype=torch.bfloat16)\n",
        "Wrong dtype on empty: torch.bfloat16, expected torch.int32.",
    ),
    "a list": ("def prefix_sum(x):\n    return []\n", "Wrong shape on empty: list, expected (0,)."),
    "the wrong length": (
        "import torch\n\ndef prefix_sum(x):\n    return torch.zeros(x.numel() + 1, dtype=torch.int32)\n",
        "Wrong shape on empty: (1,), expected (0,).",
    ),
    "an exit": (
        "import os\n\ndef prefix_sum(x):\n    os._exit(3)\n",
        "No answer for empty: the solution's run failed (exit status 3)",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_is_a_nan_naming_the_case_and_what_came_back(tmp_path: Path, fault: str) -> None:
    source, message = FAULTS[fault]
    result = score_locally(tmp_path, source)
    assert result["score"] is None
    assert result["message"].startswith(message), result["message"]


def test_no_solution_is_a_nan_saying_so(tmp_path: Path) -> None:
    result = score_locally(tmp_path, None)
    assert result["score"] is None
    assert result["message"] == "No solution.py in the workspace."


def test_the_inputs_are_drawn_afresh_for_every_run(tmp_path: Path) -> None:
    first = score_locally(tmp_path / "one", STARTING)
    second = score_locally(tmp_path / "two", STARTING)
    assert first["details"]["correct"] is True, first["message"]
    assert second["details"]["correct"] is True, second["message"]
    assert first["details"]["seed"] != second["details"]["seed"]
