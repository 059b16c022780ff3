"""The grading API the terminal's `task` command calls: score, follow the job, read the log and the instructions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from graders import services
from graders.models import ScoreLogEntry, ScoringJob
from tests import factories
from trials.models import Attempt


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def log_entry(attempt: Attempt, score: float | None, minutes: float, **details: object) -> ScoreLogEntry:
    job = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test", status="done")
    entry = ScoreLogEntry.objects.create(
        attempt=attempt,
        job=job,
        scored_at=timezone.now() + timedelta(minutes=minutes),
        elapsed_seconds=minutes * 60,
        score=score,
        message="ok" if score is not None else "invalid",
        details=details,
    )
    services.attempt_score_update(attempt=attempt)
    return entry


def test_scoring_answers_202_with_the_job_and_a_second_request_gets_the_same_job(
    attempt_on: Callable[..., Attempt], django_capture_on_commit_callbacks
) -> None:
    attempt = attempt_on("grading_test_ok")
    client = client_for(attempt.user)
    with django_capture_on_commit_callbacks() as callbacks:
        first = client.post(f"/api/attempts/{attempt.pk}/score/")
        second = client.post(f"/api/attempts/{attempt.pk}/score/")
    assert first.status_code == 202
    assert first.json()["status"] == "queued"
    assert second.json()["job"] == first.json()["job"]
    assert len(callbacks) == 1  # one message sent, for one job
    job = client.get(f"/api/attempts/{attempt.pk}/score-jobs/{first.json()['job']}/").json()
    assert job == {"job": first.json()["job"], "status": "queued", "entry": None}


def test_someone_elses_attempt_is_a_404_and_an_admin_may_score_it(
    attempt_on: Callable[..., Attempt], other_expert, admin_user, django_capture_on_commit_callbacks
) -> None:
    attempt = attempt_on("grading_test_ok")
    for path in ("score-log/", "instructions/", f"score-jobs/{uuid.uuid4()}/"):
        assert client_for(other_expert).get(f"/api/attempts/{attempt.pk}/{path}").status_code == 404
    assert client_for(other_expert).post(f"/api/attempts/{attempt.pk}/score/").status_code == 404
    with django_capture_on_commit_callbacks():
        assert client_for(admin_user).post(f"/api/attempts/{attempt.pk}/score/").status_code == 202
    assert APIClient().get(f"/api/attempts/{attempt.pk}/score-log/").status_code in (401, 403)


def test_a_malformed_or_unknown_job_id_is_a_404(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("grading_test_ok")
    client = client_for(attempt.user)
    assert client.get(f"/api/attempts/{attempt.pk}/score-jobs/not-a-uuid/").status_code == 404
    assert client.get(f"/api/attempts/{attempt.pk}/score-jobs/{uuid.uuid4()}/").status_code == 404


def test_an_ended_attempt_or_an_environment_without_scorer_is_a_400_naming_the_attempt(
    attempt_on: Callable[..., Attempt],
) -> None:
    attempt = attempt_on("grading_test_unpackaged", description="No package on this site.")
    response = client_for(attempt.user).post(f"/api/attempts/{attempt.pk}/score/")
    assert response.status_code == 400
    assert "no scorer" in response.json()["attempt"][0]
    ended = attempt_on("grading_test_ok")
    Attempt.objects.filter(pk=ended.pk).update(status="ended", ended_at=timezone.now(), end_reason="submitted")
    response = client_for(ended.user).post(f"/api/attempts/{ended.pk}/score/")
    assert response.status_code == 400
    assert "ended" in response.json()["attempt"][0]


def test_the_score_log_shows_scores_normalised_and_the_aggregate(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("grading_test_ok", starting_score=0.2, reference_score=0.6)
    log_entry(attempt, 0.4, 1)
    log_entry(attempt, None, 2)
    log_entry(attempt, 0.1, 3)
    body = client_for(attempt.user).get(f"/api/attempts/{attempt.pk}/score-log/").json()
    assert [e["score"] for e in body["entries"]] == [0.4, None, 0.1]
    assert [e["valid"] for e in body["entries"]] == [True, False, True]
    assert body["entries"][0]["normalised_score"] == pytest.approx(0.5)
    assert body["entries"][2]["normalised_score"] == 0.0  # below the start: clipped
    assert body["final_score"] == 0.4  # max
    assert body["final_normalised_score"] == pytest.approx(0.5)


def test_hidden_scores_show_the_expert_only_validity_and_the_admin_everything(
    attempt_on: Callable[..., Attempt], admin_user
) -> None:
    attempt = attempt_on("ai_rd_small_scaling_law")
    log_entry(attempt, 0.2356, 1, budget_fraction=0.75, loss_at_answer=3.76)
    expert_view = client_for(attempt.user).get(f"/api/attempts/{attempt.pk}/score-log/").json()
    assert expert_view["scores_visible"] is False
    assert expert_view["entries"][0]["valid"] is True
    assert expert_view["entries"][0]["score"] is None
    assert expert_view["entries"][0]["details"] == {"budget_fraction": 0.75}
    assert expert_view["final_score"] is None
    admin_view = client_for(admin_user).get(f"/api/attempts/{attempt.pk}/score-log/").json()
    assert admin_view["entries"][0]["score"] == 0.2356
    assert admin_view["final_score"] == 0.2356


def test_instructions_are_the_packages_markdown(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("ai_rd_triton_cumsum")
    body = client_for(attempt.user).get(f"/api/attempts/{attempt.pk}/instructions/").json()
    assert body["environment"] == "ai_rd_triton_cumsum"
    assert body["instructions"].startswith("# Triton cumulative sum")
    other = attempt_on("grading_test_unpackaged", description="No package on this site.")
    body = client_for(other.user).get(f"/api/attempts/{other.pk}/instructions/").json()
    assert body["instructions"] == other.environment.description  # no package: the description


@pytest.mark.parametrize(("aggregation", "expected"), [("min", 0.1), ("max", 0.9), ("last", 0.5)])
def test_the_final_score_is_the_environments_aggregate_of_valid_entries(
    attempt_on: Callable[..., Attempt], aggregation: str, expected: float
) -> None:
    attempt = attempt_on("grading_test_ok", aggregation=aggregation)
    for minutes, score in enumerate([0.3, 0.9, 0.1, 0.5, None]):
        log_entry(attempt, score, minutes)
    attempt.final_score.refresh_from_db()
    assert attempt.final_score.raw == expected


def test_normalisation_for_lower_is_better_environments(db) -> None:
    environment = factories.environment("ai_rd_triton_cumsum")  # 1.5535 → 0.4700, lower is better
    assert services.normalise(environment, environment.starting_score) == 0.0
    assert services.normalise(environment, environment.reference_score) == pytest.approx(1.0)
    beaten = services.normalise(environment, 0.0)
    assert beaten is not None
    assert beaten > 1.0  # beating the reference is allowed
    assert services.normalise(environment, 3.0) == 0.0  # worse than the start: clipped
    assert services.normalise(environment, None) is None
    assert services.normalise(environment, float("nan")) is None
