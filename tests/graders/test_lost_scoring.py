"""Scoring that always ends: a job whose worker goes silent is sent out again once, then closed with one
invalid entry marked lost and the attempt's clock running; an admin can close or re-run any job.

The workers here are the services a worker calls (begin, finish), moved through time by `now`;
test_scoring_worker.py kills real workers on every broker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from graders import services
from graders.models import ScoreLogEntry, ScoringJob
from rebench_site.errors import NotAllowed, ServiceError
from trials.models import Attempt, Pause
from workstation import scoring

pytestmark = pytest.mark.django_db

LOST_AFTER = 60


@pytest.fixture(autouse=True)
def _timing(settings: Any) -> None:
    settings.SCORING_LOST_AFTER_SECONDS = LOST_AFTER
    settings.SCORING_MAX_DELIVERIES = 2


def begun(attempt: Attempt, at: datetime) -> ScoringJob:
    assert attempt.user is not None
    job = services.scoring_job_request(attempt=attempt, by=attempt.user, now=at)
    started = services.scoring_job_begin(job_id=str(job.pk), now=at)
    assert started is not None
    return started


def scoring_pause(attempt: Attempt) -> Pause:
    return Pause.objects.get(attempt=attempt, reason=Pause.Reason.SCORING)


def test_a_second_message_for_a_job_another_worker_runs_does_nothing(attempt_on: Callable[..., Attempt]) -> None:
    now = timezone.now()
    job = begun(attempt_on("grading_test_ok"), now)
    assert services.scoring_job_begin(job_id=str(job.pk), now=now + timedelta(seconds=5)) is None
    job.refresh_from_db()
    assert (job.status, job.deliveries) == ("running", 1)


def test_a_silent_job_is_sent_out_again_once_then_closed_lost_with_the_clock_running(
    attempt_on: Callable[..., Attempt], django_capture_on_commit_callbacks: Any
) -> None:
    attempt = attempt_on("grading_test_ok")
    now = timezone.now()
    job = begun(attempt, now)
    assert services.scoring_jobs_recover(now=now + timedelta(seconds=LOST_AFTER - 1)) == {}
    with django_capture_on_commit_callbacks() as sent:
        assert services.scoring_jobs_recover(now=now + timedelta(seconds=LOST_AFTER + 1)) == {str(job.pk): "queued"}
    assert len(sent) == 1  # the message, sent again
    job.refresh_from_db()
    assert job.status == "queued"
    assert scoring_pause(attempt).ended_at is None  # the workspace is as it was when scoring began

    later = now + timedelta(seconds=2 * LOST_AFTER)
    assert services.scoring_job_begin(job_id=str(job.pk), now=later) is not None
    gone = later + timedelta(seconds=LOST_AFTER + 1)
    assert services.scoring_jobs_recover(now=gone) == {str(job.pk): "closed"}
    entry = ScoreLogEntry.objects.get(job=job)
    assert entry.score is None
    assert entry.details == {"lost": True, "deliveries": 2}
    assert "no worker finished it" in entry.message
    assert scoring_pause(attempt).ended_at == gone
    attempt.refresh_from_db()
    assert attempt.is_running
    assert services.scoring_jobs_recover(now=gone + timedelta(hours=1)) == {}


def test_a_job_sent_out_again_that_no_worker_takes_is_closed(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("grading_test_ok")
    now = timezone.now()
    job = begun(attempt, now)
    resent = now + timedelta(seconds=LOST_AFTER + 1)
    services.scoring_jobs_recover(now=resent)
    assert services.scoring_jobs_recover(now=resent + timedelta(seconds=2 * LOST_AFTER)) == {}
    assert services.scoring_jobs_recover(now=resent + timedelta(seconds=2 * LOST_AFTER + 1)) == {str(job.pk): "closed"}
    assert ScoreLogEntry.objects.filter(job=job).count() == 1
    assert scoring_pause(attempt).ended_at is not None


def test_a_job_picked_up_once_too_often_is_closed_by_the_worker_that_picks_it_up(
    attempt_on: Callable[..., Attempt],
) -> None:
    attempt = attempt_on("grading_test_ok")
    now = timezone.now()
    job = begun(attempt, now)
    lost = now + timedelta(seconds=LOST_AFTER + 1)
    assert services.scoring_job_begin(job_id=str(job.pk), now=lost) is not None  # the broker's redelivery
    assert services.scoring_job_begin(job_id=str(job.pk), now=lost + timedelta(seconds=LOST_AFTER + 1)) is None
    assert ScoreLogEntry.objects.get(job=job).details["lost"] is True


def test_asking_to_score_during_a_lost_job_never_returns_a_job_that_cant_finish(
    attempt_on: Callable[..., Attempt],
) -> None:
    attempt = attempt_on("grading_test_ok")
    now = timezone.now()
    job = begun(attempt, now)
    # Deliveries left: the same job, sent out again.
    assert attempt.user is not None
    again = services.scoring_job_request(attempt=attempt, by=attempt.user, now=now + timedelta(seconds=LOST_AFTER + 1))
    assert again.pk == job.pk
    assert again.status == "queued"
    services.scoring_job_begin(job_id=str(job.pk), now=now + timedelta(seconds=LOST_AFTER + 2))
    # None left: closed, and the request gets a new job.
    fresh = services.scoring_job_request(attempt=attempt, by=attempt.user, now=now + timedelta(seconds=3 * LOST_AFTER))
    assert fresh.pk != job.pk
    assert fresh.status == "queued"
    assert ScoringJob.objects.get(pk=job.pk).status == "failed"


def test_a_worker_finishing_after_its_job_was_closed_writes_nothing(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("grading_test_ok")
    now = timezone.now()
    job = begun(attempt, now)
    services.scoring_job_begin(job_id=str(job.pk), now=now + timedelta(seconds=LOST_AFTER + 1))
    services.scoring_jobs_recover(now=now + timedelta(seconds=3 * LOST_AFTER))
    late = services.scoring_job_finish(job_id=str(job.pk), outcome=scoring.Outcome(score=0.9, message="late"))
    assert late is not None
    assert late.score is None  # the lost entry, not a second one
    assert ScoreLogEntry.objects.filter(attempt=attempt).count() == 1


def test_an_admin_closes_a_stuck_job_and_an_expert_cannot(attempt_on: Callable[..., Attempt], admin_user: Any) -> None:
    attempt = attempt_on("grading_test_ok")
    job = begun(attempt, timezone.now())
    assert attempt.user is not None
    with pytest.raises(NotAllowed):
        services.scoring_job_close(job=job, by=attempt.user)
    expert = Client()
    expert.force_login(attempt.user)
    assert expert.post("/grading/jobs/close/", {"job": str(job.pk)}).status_code == 403
    admin = Client()
    admin.force_login(admin_user)
    page = admin.get("/grading/jobs/").content.decode()
    assert "Close" in page
    response = admin.post("/grading/jobs/close/", {"job": str(job.pk)}, follow=True)
    assert "the attempt&#x27;s clock runs again" in response.content.decode()
    entry = ScoreLogEntry.objects.get(job=job)
    assert entry.details["closed_by"] == admin_user.username
    assert scoring_pause(attempt).ended_at is not None
    with pytest.raises(ServiceError, match="finished already"):
        services.scoring_job_close(job=job, by=admin_user)


def test_re_running_an_unfinished_job_closes_it_first(attempt_on: Callable[..., Attempt], admin_user: Any) -> None:
    attempt = attempt_on("grading_test_ok")
    job = begun(attempt, timezone.now())
    rerun = services.scoring_job_rerun(job=job, by=admin_user)
    assert rerun.rerun_of_id == job.pk
    assert rerun.status == "queued"
    assert ScoringJob.objects.get(pk=job.pk).status == "failed"
    assert ScoreLogEntry.objects.filter(job=job).count() == 1


def test_an_admin_re_run_scores_beside_the_expert_without_stopping_their_clock_and_is_marked(
    attempt_on: Callable[..., Attempt], admin_user: Any
) -> None:
    attempt = attempt_on("grading_test_ok")
    now = timezone.now()
    job = begun(attempt, now)
    services.scoring_job_finish(job_id=str(job.pk), outcome=scoring.Outcome(score=0.5, message="mine"), now=now)
    rerun = services.scoring_job_rerun(job=ScoringJob.objects.get(pk=job.pk), by=admin_user)
    later = now + timedelta(minutes=5)
    assert services.scoring_job_begin(job_id=str(rerun.pk), now=later) is not None
    assert not Pause.objects.filter(attempt=attempt, ended_at__isnull=True).exists()  # the clock runs on
    entry = services.scoring_job_finish(job_id=str(rerun.pk), outcome=scoring.Outcome(score=0.6, message="again"))
    assert entry is not None
    assert entry.details["admin_rerun"] is True
    assert entry.details["rerun_of"] == str(job.pk)
    page = Client()
    assert attempt.user is not None
    page.force_login(attempt.user)
    assert "admin re-run" in page.get(f"/attempts/{attempt.pk}/").content.decode()
