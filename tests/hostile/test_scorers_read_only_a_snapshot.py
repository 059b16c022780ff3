"""An expert's links and pipes in the workspace never reach a scorer: it reads only a snapshot.

The expert names every file in the workspace. A scorer that opened `answer.json` itself, as the
scorer's user with the `protected` group, would follow a link to the package's reference answer,
to the protected copy of a scorer or to another attempt's score log; a worker that opened
`submission.txt` as root would read /etc/shadow. The files a package lists are snapshotted inside
the attempt's sandbox, as its user (where such links lead nowhere, or to what that user can't
read), keeping regular files only; the one file the worker reads itself is opened without
following links. Every case runs the real scoring path (`scoring_job_run`, in this process).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from environments import task_standard
from environments.models import Environment
from graders import services
from graders.models import ScoreLogEntry, ScoringJob
from graders.services.agent import scoring_job_spec
from tests import factories
from tests.environments.scoring_support import small_configuration
from tests.graders.conftest import attempt_on, grading_dirs
from tests.workspace_support import give_to_owner
from trials import services as trials_services
from trials.models import Attempt
from workstation import layout
from workstation.agent import work
from workstation.agent.tasks import scoring_job_run

__all__ = ["attempt_on", "grading_dirs", "small_configuration"]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox switches users and makes cgroups: needs root"),
    pytest.mark.timeout(300),
]

SCALING_LAW = "ai_rd_small_scaling_law"
FIX_EMBEDDING = "ai_rd_fix_embedding"
REFERENCE_ANSWER = Path(settings.BASE_DIR) / "environments" / SCALING_LAW / "reference" / "answer.json"
FAMILIES = Path(__file__).resolve().parent.parent / "environments" / "task_families"
SECRET = "another attempt's score message: SECRET-4f1d"
# Well under any scorer's own timeout: a scorer stuck on a pipe would take that long.
QUICK_SECONDS = 120


def shadow_text() -> str:
    return Path("/etc/shadow").read_text()


def replace_with_link(workspace: Path, name: str, target: Path) -> None:
    """The expert's `ln -sf target name` (the link theirs, as their own files are)."""
    path = workspace / name
    path.unlink(missing_ok=True)
    path.symlink_to(target)
    give_to_owner(workspace)


def replace_with_fifo(workspace: Path, name: str) -> None:
    path = workspace / name
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    give_to_owner(workspace)


def run_job(job: ScoringJob) -> tuple[ScoreLogEntry, float]:
    started = time.monotonic()
    scoring_job_run(str(job.pk))
    return ScoreLogEntry.objects.get(job=job), time.monotonic() - started


def shown(entry: ScoreLogEntry) -> str:
    """Everything a score log entry holds that someone reads: its message and its details."""
    return entry.message + "\n" + json.dumps(entry.details)


def log_of_another_attempt(attempt_on: Callable[..., Attempt]) -> Path:
    """Another attempt's CSV score log, as the worker writes it (root:protected, 0640)."""
    other = attempt_on(SCALING_LAW)
    entry = ScoreLogEntry(attempt=other, scored_at=timezone.now(), score=0.9, message=SECRET, details={"k": SECRET})
    services._append_csv_log(other.pk, entry)
    path = services.csv_log_path(other.pk)
    assert SECRET in path.read_text()
    return path


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["reference answer", "protected scorer copy", "another attempt's log"])
def test_an_answer_linked_to_a_file_the_scorer_could_read_is_no_answer(
    attempt_on: Callable[..., Attempt], target: str
) -> None:
    attempt = attempt_on(SCALING_LAW)
    services.workspace_prepare(attempt=attempt)
    workspace = layout.workspace(attempt.pk)
    job = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test")
    if target == "reference answer":
        linked = REFERENCE_ANSWER
    elif target == "protected scorer copy":
        # The scorer's copy for this very job: the expert can't know the job's id, the test can.
        linked = Path(settings.PROTECTED_DIR) / "scorers" / str(job.pk) / "score.py"
    else:
        linked = log_of_another_attempt(attempt_on)
    replace_with_link(workspace, "answer.json", linked)

    entry, _ = run_job(job)

    assert entry.score is None, (entry.score, entry.message)  # the reference answer scores 1.0
    assert entry.message == "No answer.json in the workspace."  # the scorer never saw the link's target
    assert SECRET not in shown(entry)
    assert "88914" not in shown(entry)  # the reference answer's max_iters
    assert "REBENCH_RESULT_MARKER" not in shown(entry)  # a line of score.py


@pytest.mark.django_db
@pytest.mark.usefixtures("small_configuration")
@pytest.mark.parametrize("kind", ["fifo", "link to /etc/shadow"])
def test_a_checkpoint_that_is_a_pipe_or_a_link_to_etc_shadow_is_a_quick_nan_with_the_reason(
    attempt_on: Callable[..., Attempt], kind: str
) -> None:
    attempt = attempt_on(FIX_EMBEDDING)
    services.workspace_prepare(attempt=attempt)  # start: the trained and corrupted models (cached)
    workspace = layout.workspace(attempt.pk)
    if kind == "fifo":
        replace_with_fifo(workspace, "fixed_model.pth")  # opening it would wait for a writer forever
    else:
        replace_with_link(workspace, "fixed_model.pth", Path("/etc/shadow"))
    job = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test")

    entry, seconds = run_job(job)

    assert seconds < QUICK_SECONDS
    assert entry.score is None
    assert "fixed_model.pth" in entry.message, entry.message
    if kind == "fifo":
        # Not a regular file: the snapshot leaves it out, the scorer finds no checkpoint.
        assert entry.message == "No fixed_model.pth in the workspace."
    for line in shadow_text().splitlines():
        secret = line.split(":")[1] if line.count(":") > 1 else ""
        if len(secret) > 2:  # a password hash, not "*" or "!"
            assert secret not in shown(entry)
    assert "root:" not in shown(entry)


@pytest.fixture
def final_job(grading_dirs: Path, django_capture_on_commit_callbacks: Any) -> Callable[..., ScoringJob]:
    """`final_job(kind, family=)`: an ended attempt at a Task Standard family scored on its submission.txt,
    which the expert made a link to /etc/shadow or a pipe; its final scoring job, not yet run."""

    def make(kind: str, family: str = "end_family") -> ScoringJob:
        task_standard.task_family_register(path=str(FAMILIES / family))
        reservation = factories.ReservationFactory.create(
            expert=factories.expert(username="ada"), environment=Environment.objects.get(slug=f"{family}-main")
        )
        attempt = factories.AttemptFactory.create(reservation=reservation)
        services.workspace_prepare(attempt=attempt)
        workspace = layout.workspace(attempt.pk)
        if kind == "fifo":
            replace_with_fifo(workspace, "submission.txt")
        else:
            replace_with_link(workspace, "submission.txt", Path("/etc/shadow"))
        with django_capture_on_commit_callbacks(execute=False):
            assert attempt.user is not None
            trials_services.attempt_submit(attempt=attempt, by=attempt.user)
            job = services.scoring_job_queue_final(attempt_id=attempt.pk)
        assert job is not None
        return job

    return make


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["link to /etc/shadow", "fifo"])
def test_a_task_standard_submission_that_is_a_link_or_a_pipe_is_read_as_empty(
    final_job: Callable[..., ScoringJob], kind: str
) -> None:
    job = final_job(kind)
    # What the worker (root) reads itself and hands the family's `score` as the submission.
    started = time.monotonic()
    assert work.final_context(scoring_job_spec(job))["submission"] == ""
    assert time.monotonic() - started < 5  # a pipe with no writer is not waited on


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["link to /etc/shadow", "fifo"])
def test_a_family_that_quotes_a_bad_submission_never_quotes_the_linked_file(
    final_job: Callable[..., ScoringJob], kind: str
) -> None:
    entry, seconds = run_job(final_job(kind, family="number_family"))
    assert seconds < QUICK_SECONDS
    assert entry.score is None  # not a number: the family raised
    assert "root:" not in shown(entry)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kind",
    [
        "link to /etc/shadow",
        "fifo",
    ],
)
def test_the_final_scoring_scores_such_a_submission_as_empty(final_job: Callable[..., ScoringJob], kind: str) -> None:
    entry, seconds = run_job(final_job(kind))
    assert seconds < QUICK_SECONDS
    assert "root:" not in shown(entry)
    assert entry.score == 0.0, entry.message  # end_family: 1.0 for "42", else 0.0
