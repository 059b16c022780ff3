"""The starting solution is scored once when the workspace is ready (RE-Bench scores it at start)."""

from __future__ import annotations

from collections.abc import Callable

from django.utils import timezone

from graders import services
from graders.models import ScoringJob
from trials.models import Attempt


def test_preparing_the_workspace_queues_one_scoring_of_the_starting_solution(
    attempt_on: Callable[..., Attempt], django_capture_on_commit_callbacks
) -> None:
    attempt = attempt_on("grading_test_ok")
    with django_capture_on_commit_callbacks() as queued:
        job = services.scoring_job_queue_start(attempt_id=attempt.pk)
    assert job is not None
    assert job.kind == ScoringJob.Kind.INTERMEDIATE
    assert job.requested_by is None
    assert job.queue_name == attempt.workstation.queue_name
    assert len(queued) == 1  # sent to the workstation's queue after commit
    with django_capture_on_commit_callbacks() as queued_again:
        assert services.scoring_job_queue_start(attempt_id=attempt.pk) is None  # a redelivered prepare task
    assert queued_again == []
    assert ScoringJob.objects.filter(attempt=attempt).count() == 1


def test_no_start_scoring_when_the_expert_was_quicker_or_the_attempt_ended_or_there_is_no_scorer(
    attempt_on: Callable[..., Attempt], django_capture_on_commit_callbacks
) -> None:
    quicker = attempt_on("grading_test_ok")
    with django_capture_on_commit_callbacks():
        assert quicker.user is not None
        services.scoring_job_request(attempt=quicker, by=quicker.user)
        assert services.scoring_job_queue_start(attempt_id=quicker.pk) is None
    assert ScoringJob.objects.filter(attempt=quicker).count() == 1

    ended = attempt_on("grading_test_ok")
    Attempt.objects.filter(pk=ended.pk).update(status="ended", ended_at=timezone.now(), end_reason="submitted")
    assert services.scoring_job_queue_start(attempt_id=ended.pk) is None

    unscored = attempt_on("grading_test_unpackaged", description="No package on this site.")
    assert services.scoring_job_queue_start(attempt_id=unscored.pk) is None
    assert not ScoringJob.objects.filter(attempt__in=[ended, unscored]).exists()
