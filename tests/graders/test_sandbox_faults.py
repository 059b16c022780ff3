"""Scorers that hang, eat memory, print 100 MB, crash or return a string give a NaN entry with a clear message."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from graders import services
from graders.models import ScoreLogEntry, ScoringJob
from tests.workspace_support import put
from trials.models import Attempt
from workstation import layout
from workstation.agent.tasks import scoring_job_run

pytestmark = pytest.mark.timeout(120)


def score_once(attempt: Attempt) -> tuple[str, ScoreLogEntry]:
    """Run the scoring task body in this process (the sandbox is what is under test, not Celery)."""
    job = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test")
    status = scoring_job_run(str(job.pk))
    return status, ScoreLogEntry.objects.get(job=job)


def test_a_working_scorer_writes_its_score_and_restarts_the_clock(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("grading_test_ok")
    status, entry = score_once(attempt)
    assert status == ScoringJob.Status.DONE
    assert entry.score == 0.5  # from the starting solution copied into the workspace
    assert entry.details["nan"] == "nan"  # NaN in details is kept as text: JSON has no NaN
    assert entry.elapsed_seconds >= 0
    pauses = list(attempt.pauses.all())
    assert [p.reason for p in pauses] == ["scoring"]
    assert pauses[0].ended_at is not None


def test_a_hanging_scorer_is_stopped_at_its_timeout_with_its_children(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("grading_test_hang")
    started = time.monotonic()
    status, entry = score_once(attempt)
    assert time.monotonic() - started < 15
    assert status == ScoringJob.Status.DONE
    assert entry.score is None
    assert entry.details["timeout"] is True
    assert "limit" in entry.message
    # The scorer's child (sleep 600) went with it: no process left with that command line.
    leftovers = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"time.sleep(600)" in cmd:
                leftovers.append(pid)
    assert leftovers == []


@pytest.mark.parametrize("slug", ["grading_test_oom", "grading_test_oom_data"], ids=["RLIMIT_AS", "RLIMIT_DATA"])
def test_a_scorer_over_its_memory_limit_is_an_out_of_memory_nan(attempt_on: Callable[..., Attempt], slug: str) -> None:
    _, entry = score_once(attempt_on(slug))
    assert entry.score is None
    assert entry.details["out_of_memory"] is True
    assert entry.message == "The scorer ran out of memory."


def test_a_scorer_printing_100_mb_is_capped_and_still_scored(attempt_on: Callable[..., Attempt]) -> None:
    _, entry = score_once(attempt_on("grading_test_noisy"))
    assert entry.score == 2.0
    assert entry.details["output_cut_bytes"] > 90 * 1024 * 1024


def test_a_crashing_scorer_logs_the_last_lines_of_stderr(attempt_on: Callable[..., Attempt]) -> None:
    _, entry = score_once(attempt_on("grading_test_crash"))
    assert entry.score is None
    assert "exit status 1" in entry.message
    assert "RuntimeError: the solution broke the scorer" in entry.details["stderr_tail"]


def test_a_scorer_returning_a_string_is_a_nan_naming_what_it_returned(attempt_on: Callable[..., Attempt]) -> None:
    _, entry = score_once(attempt_on("grading_test_string"))
    assert entry.score is None
    assert "'fast'" in entry.message
    assert "not a number" in entry.message


def test_a_finished_job_delivered_again_writes_nothing(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("grading_test_ok")
    job = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test")
    assert scoring_job_run(str(job.pk)) == ScoringJob.Status.DONE
    assert scoring_job_run(str(job.pk)) == "skipped"
    assert ScoreLogEntry.objects.filter(attempt=attempt).count() == 1
    job.refresh_from_db()
    assert job.deliveries == 1
    assert job.run_seconds is not None
    assert job.run_seconds > 0


def test_each_entry_records_the_digest_of_the_scorer_that_produced_it(
    attempt_on: Callable[..., Attempt], monkeypatch: pytest.MonkeyPatch
) -> None:
    from environments import packages

    attempt = attempt_on("grading_test_ok")
    package = packages.find("grading_test_ok")
    original = package.scorer_digest()
    first = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test")
    scoring_job_run(str(first.pk))
    # The scorer changes (a new version deployed mid-attempt): the next entry says so.
    monkeypatch.setattr(type(package), "scorer_digest", lambda self: "f" * 64)
    second = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test")
    scoring_job_run(str(second.pk))

    digests = list(ScoreLogEntry.objects.filter(attempt=attempt).order_by("pk").values_list("scorer_digest", flat=True))
    assert digests == [original, "f" * 64]
    assert len(original) == 64


def test_nan_entries_do_not_count_towards_the_final_score(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("grading_test_ok")
    workspace = layout.workspace(attempt.pk)
    score_once(attempt)  # 0.5 from the starting solution
    put(workspace, "score.txt", "0.8")
    score_once(attempt)
    put(workspace, "score.txt", "not a number")
    score_once(attempt)
    final = attempt.final_score
    final.refresh_from_db()
    assert final.raw == 0.8  # max over valid entries
    assert final.valid_entries == 2
    assert final.normalised is not None
    assert not math.isnan(final.normalised)
    assert ScoreLogEntry.objects.filter(attempt=attempt, score__isnull=True).count() == 1


def test_a_package_harness_runs_the_experts_code_without_the_scorers_privileges(
    attempt_on: Callable[..., Attempt],
) -> None:
    attempt = attempt_on("grading_test_harness")
    services.workspace_prepare(attempt=attempt)
    put(layout.workspace(attempt.pk), "program.sh", "echo 0.625\n")
    status, entry = score_once(attempt)
    assert status == ScoringJob.Status.DONE
    assert entry.score == 0.625, entry.message
    # The expert's code could not read the scorer, and what it left besides regular files never came back.
    assert entry.details["scorer_read"] == ""
    assert "No such file or directory" in entry.details["scorer_error"]
    assert "link.txt" not in entry.details["files"]
