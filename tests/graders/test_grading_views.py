"""The attempt page's score card (button, live progress, table, chart) and the admin's scoring-job page."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta

from django.test import Client
from django.utils import timezone

from graders.models import ScoreLogEntry, ScoringJob
from tests.graders.test_grading_api import log_entry
from trials.models import Attempt


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_correct_answer_the_scorer_could_not_time_reads_correct_timing_needs_a_gpu_not_invalid(
    attempt_on: Callable[..., Attempt],
) -> None:
    attempt = attempt_on("grading_test_ok")
    untimed = log_entry(attempt, None, 3, correct=True, timed=False)
    wrong = log_entry(attempt, None, 5, correct=False)
    assert untimed.verdict == "untimed"
    assert wrong.verdict == "invalid"
    assert log_entry(attempt, 1.25, 7, correct=True, timed=True).verdict == "valid"
    html = logged_in(attempt.user).get(f"/attempts/{attempt.pk}/").content.decode()
    assert '<tr class="untimed">' in html
    assert html.count("correct — timing needs a GPU") == 1
    assert '<tr class="invalid">' in html


def test_the_experts_attempt_page_shows_the_score_log_and_the_chart_data(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("grading_test_ok")
    log_entry(attempt, 0.625, 3)
    log_entry(attempt, None, 5)
    html = logged_in(attempt.user).get(f"/attempts/{attempt.pk}/").content.decode()
    assert 'id="score-log"' in html
    assert '<span title="0.625">0.625</span>' in html
    assert "NaN" in html
    assert 'id="score-button"' in html
    points = json.loads(re.search(r'data-points="([^"]*)"', html).group(1).replace("&quot;", '"'))
    assert points == [{"elapsed_minutes": 3.0, "score": 0.625, "valid": True}]
    assert "vega-lite-6.5.0.min.js" in html


def test_a_hidden_score_environment_shows_the_expert_validity_only(
    attempt_on: Callable[..., Attempt], admin_user
) -> None:
    attempt = attempt_on("ai_rd_small_scaling_law")
    log_entry(attempt, 0.2356, 3, budget_fraction=0.75)
    expert_html = logged_in(attempt.user).get(f"/attempts/{attempt.pk}/").content.decode()
    assert "0.2356" not in expert_html
    assert "valid" in expert_html
    assert "75 % of budget" in expert_html
    assert 'id="score-chart"' not in expert_html
    admin_html = logged_in(admin_user).get(f"/attempts/{attempt.pk}/").content.decode()
    assert "0.2356" in admin_html


def test_the_score_button_queues_a_job_and_the_card_polls_until_it_finishes(
    attempt_on: Callable[..., Attempt], django_capture_on_commit_callbacks
) -> None:
    attempt = attempt_on("grading_test_ok")
    client = logged_in(attempt.user)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/grading/attempts/{attempt.pk}/score/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert len(callbacks) == 1
    html = response.content.decode()
    assert "Scoring: <strong>queued</strong>" in html
    assert 'hx-trigger="every 2s"' in html
    job = ScoringJob.objects.get(attempt=attempt)
    ScoringJob.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now() - timedelta(seconds=42))
    html = client.get(f"/grading/attempts/{attempt.pk}/scores/").content.decode()
    assert "running 00:42" in html
    ScoringJob.objects.filter(pk=job.pk).update(status="done", finished_at=timezone.now())
    ScoreLogEntry.objects.create(attempt=attempt, job=job, scored_at=timezone.now(), elapsed_seconds=60, score=0.9)
    html = client.get(f"/grading/attempts/{attempt.pk}/scores/").content.decode()
    assert "every 2s" not in html  # finished: polling stops
    assert 'score <span title="0.9">0.9</span>' in html


def test_scoring_someone_elses_attempt_is_a_404_and_a_reviewer_is_refused(
    attempt_on: Callable[..., Attempt], other_expert, reviewer
) -> None:
    attempt = attempt_on("grading_test_ok")
    assert logged_in(other_expert).post(f"/grading/attempts/{attempt.pk}/score/").status_code == 404
    assert logged_in(other_expert).get(f"/grading/attempts/{attempt.pk}/scores/").status_code == 404
    assert logged_in(reviewer).get(f"/grading/attempts/{attempt.pk}/scores/").status_code == 403
    assert not ScoringJob.objects.exists()


def test_a_refused_score_request_shows_why_in_the_card(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("grading_test_unpackaged", description="No package on this site.")
    response = logged_in(attempt.user).post(f"/grading/attempts/{attempt.pk}/score/", HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "has no scorer on this site yet" in response.content.decode()


def test_the_admin_lists_scoring_jobs_across_workstations_and_re_runs_one(
    attempt_on: Callable[..., Attempt], admin_user, django_assert_max_num_queries, django_capture_on_commit_callbacks
) -> None:
    first = attempt_on("grading_test_ok")
    second = attempt_on("grading_test_crash")
    log_entry(first, 0.5, 1)
    log_entry(second, None, 1)
    ScoringJob.objects.create(attempt=second, queue_name=second.workstation.queue_name)
    client = logged_in(admin_user)
    with django_assert_max_num_queries(8):
        html = client.get("/grading/jobs/").content.decode()
    assert html.count('class="badge done"') == 2
    assert html.count('class="badge queued"') == 1
    assert second.workstation.queue_name in html
    assert html.count("Re-run") == 3  # any job, the unfinished one closed first
    assert html.count(">Close<") == 1
    failed_only = client.get("/grading/jobs/?status=failed").content.decode()
    assert "No scoring job matches." in failed_only
    response = client.post("/grading/jobs/rerun/", {"job": "not-a-job"}, follow=True)
    assert "No such scoring job." in response.content.decode()

    done = ScoringJob.objects.filter(attempt=first).get()
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post("/grading/jobs/rerun/", {"job": str(done.pk)})
    assert response.status_code == 302
    assert len(callbacks) == 1
    rerun = ScoringJob.objects.get(rerun_of=done)
    assert rerun.status == "queued"
    assert rerun.queue_name == first.workstation.queue_name


def test_experts_cannot_see_the_job_list_nor_re_run(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("grading_test_ok")
    job = log_entry(attempt, 0.5, 1).job
    client = logged_in(attempt.user)
    assert client.get("/grading/jobs/").status_code == 403
    assert client.post("/grading/jobs/rerun/", {"job": str(job.pk)}).status_code == 403
    assert not ScoringJob.objects.filter(rerun_of=job).exists()


def test_the_attempt_page_shows_the_environments_instructions(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("ai_rd_triton_cumsum")
    html = logged_in(attempt.user).get(f"/attempts/{attempt.pk}/").content.decode()
    assert 'id="environment-instructions"' in html
    assert "Write <code>prefix_sum(x)</code> in <code>solution.py</code>" in html.replace("&#x27;", "'")


def test_an_ended_attempt_without_a_valid_score_says_it_counts_as_zero_or_that_it_is_excluded(
    attempt_on: Callable[..., Attempt], admin_user
) -> None:
    attempt = attempt_on("grading_test_ok")
    log_entry(attempt, None, 5)
    running = logged_in(attempt.user).get(f"/attempts/{attempt.pk}/").content.decode()
    assert 'id="no-valid-score"' not in running  # still running: nothing is decided yet

    Attempt.objects.filter(pk=attempt.pk).update(status=Attempt.Status.ENDED, ended_at=timezone.now())
    ended = logged_in(attempt.user).get(f"/attempts/{attempt.pk}/").content.decode()
    assert "counts as 0 at every budget" in ended

    Attempt.objects.filter(pk=attempt.pk).update(excluded_reason=Attempt.Exclusion.TECHNICAL)
    excluded = logged_in(admin_user).get(f"/attempts/{attempt.pk}/").content.decode()
    assert "excluded from the\n    leaderboards (technical failure), so it counts nowhere" in excluded
    assert "counts as 0" not in excluded
