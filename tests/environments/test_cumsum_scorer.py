"""The cumsum scorer under the Triton interpreter accepts the reference and starting solutions, rejects a wrong one."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings

from graders import services
from graders.models import ScoreLogEntry, ScoringJob
from graders.tasks import scoring_job_run
from trials.models import Attempt

PACKAGE = Path(settings.BASE_DIR) / "environments" / "ai_rd_triton_cumsum"

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
    target = services.workspace_path(attempt) / "solution.py"
    target.write_text(source)
    shutil.chown(target, *(lambda s: (s.st_uid, s.st_gid))(target.parent.stat()))
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
