"""The starting solution is scored once the workspace is ready (RE-Bench scores it at start), and the
attempt's clock starts when it is: preparing the environment costs the expert no time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from graders import services
from graders.models import ScoringJob
from rebench_site.errors import ServiceError
from tests.factories import preparing
from trials.models import Attempt
from workstation import scoring


def test_preparing_the_workspace_queues_one_scoring_of_the_starting_solution(
    attempt_on: Callable[..., Attempt], django_capture_on_commit_callbacks
) -> None:
    attempt = preparing(attempt_on("grading_test_ok"))
    with django_capture_on_commit_callbacks() as queued:
        job = services.scoring_job_queue_start(attempt_id=attempt.pk)
    assert job is not None
    assert job.kind == ScoringJob.Kind.START
    assert job.requested_by is None
    assert job.queue_name == attempt.workstation.queue_name
    assert len(queued) == 1  # sent to the workstation's queue after commit
    with django_capture_on_commit_callbacks() as queued_again:
        assert services.scoring_job_queue_start(attempt_id=attempt.pk) is None  # a redelivered prepare task
    assert queued_again == []
    assert ScoringJob.objects.filter(attempt=attempt).count() == 1


def test_the_clock_starts_at_the_moment_the_starting_solution_is_scored(
    attempt_on: Callable[..., Attempt],
) -> None:
    attempt = preparing(attempt_on("grading_test_ok"))
    job = services.scoring_job_queue_start(attempt_id=attempt.pk)
    assert job is not None
    begun = timezone.now()
    services.scoring_job_begin(job_id=str(job.pk), now=begun)
    assert not attempt.pauses.exists(), "no clock to stop: no scoring pause before it starts"
    scored = begun + timedelta(seconds=40)
    entry = services.scoring_job_finish(job_id=str(job.pk), outcome=scoring.Outcome(1.5, "ok"), now=scored)
    assert entry is not None
    assert entry.elapsed_seconds == 0  # the starting score stands at the clock's zero
    started = Attempt.objects.prefetch_related("pauses").get(pk=attempt.pk)
    assert started.clock_started_at == scored
    assert started.elapsed(scored + timedelta(minutes=10)) == timedelta(minutes=10)
    assert started.hard_stop_at is not None
    assert started.deadline() == min(scored + started.time_limit, started.hard_stop_at)


def test_a_starting_solution_that_could_not_be_scored_leaves_the_clock_stopped_and_says_why(
    attempt_on: Callable[..., Attempt],
) -> None:
    attempt = preparing(attempt_on("grading_test_ok"))
    job = services.scoring_job_queue_start(attempt_id=attempt.pk)
    assert job is not None
    services.scoring_job_begin(job_id=str(job.pk))
    services.scoring_job_finish(
        job_id=str(job.pk),
        outcome=scoring.Outcome(None, "the sandbox would not start"),
        status=ScoringJob.Status.FAILED,
    )
    failed = Attempt.objects.get(pk=attempt.pk)
    assert failed.clock_started_at is None
    assert "the sandbox would not start" in failed.preparation_error
    # Preparing again scores it again (the failed job doesn't count as done).
    again = services.scoring_job_queue_start(attempt_id=attempt.pk)
    assert again is not None
    assert again.pk != job.pk


def test_an_environment_with_no_starting_score_to_take_starts_its_clock_when_the_workspace_is_ready(
    attempt_on: Callable[..., Attempt],
) -> None:
    unscored = preparing(attempt_on("grading_test_unpackaged", description="No package on this site."))
    moment = timezone.now()
    assert services.scoring_job_queue_start(attempt_id=unscored.pk, now=moment) is None
    assert Attempt.objects.get(pk=unscored.pk).clock_started_at == moment
    assert not ScoringJob.objects.filter(attempt=unscored).exists()


def test_no_start_scoring_once_the_clock_runs_or_the_attempt_ended(attempt_on: Callable[..., Attempt]) -> None:
    running = attempt_on("grading_test_ok")  # its clock started
    assert services.scoring_job_queue_start(attempt_id=running.pk) is None

    ended = preparing(attempt_on("grading_test_ok"))
    Attempt.objects.filter(pk=ended.pk).update(status="ended", ended_at=timezone.now(), end_reason="submitted")
    assert services.scoring_job_queue_start(attempt_id=ended.pk) is None
    assert Attempt.objects.get(pk=ended.pk).clock_started_at is None
    assert not ScoringJob.objects.filter(attempt__in=[running, ended]).exists()


def test_the_expert_cannot_score_before_the_clock_starts(attempt_on: Callable[..., Attempt]) -> None:
    attempt = preparing(attempt_on("grading_test_ok"))
    assert attempt.user is not None
    with pytest.raises(ServiceError, match="being prepared"):
        services.scoring_job_request(attempt=attempt, by=attempt.user)
    assert not ScoringJob.objects.filter(attempt=attempt).exists()
