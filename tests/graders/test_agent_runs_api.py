"""The harness REST API: agent runs created idempotently, score-log entries, finishing; token auth; refusals."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from environments.models import Environment
from graders.models import AttemptScore, ScoreLogEntry
from tests import factories
from tests.factories import ClientFor
from trials.models import Attempt

pytestmark = pytest.mark.django_db

CUMSUM = "ai_rd_triton_cumsum"  # lower is better, aggregate min: start 1.5535…, reference 0.4700…
RUN = {
    "run_id": "h1-run-7",
    "environment": CUMSUM,
    "agent_name": "modular",
    "agent_model": "o1",
    "time_limit_seconds": 7200,
}


@pytest.fixture(autouse=True)
def _environments(db):
    factories.environment()


def harness_user(name: str) -> Any:
    return factories.UserFactory.create(username=name, roles=["harness"])


def token_client(user: Any) -> APIClient:
    """As a harness calls us: with its DRF token in the Authorization header, no session."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def harness() -> APIClient:
    return token_client(harness_user("h1"))


@pytest.fixture
def run_id(harness: APIClient) -> int:
    response = harness.post("/api/runs/", RUN, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_a_harness_creates_a_run_posts_scores_and_finishes_it_with_its_token(harness: APIClient) -> None:
    created = harness.post("/api/runs/", RUN, format="json")
    assert created.status_code == 201
    run = created.json()
    assert (run["status"], run["environment"], run["time_limit_seconds"], run["final_score"]) == (
        "running",
        CUMSUM,
        7200.0,
        None,
    )
    pk = run["id"]

    for elapsed, score, message in [(60, 1.2, "first"), (1800, None, "crashed"), (3600, 0.9, "fused kernel")]:
        posted = harness.post(
            f"/api/runs/{pk}/score-log/",
            {"elapsed_seconds": elapsed, "score": score, "message": message},
            format="json",
        )
        assert posted.status_code == 201, posted.content
    assert posted.json()["valid"] is True
    so_far = harness.get(f"/api/runs/{pk}/").json()["final_score"]
    assert (so_far["raw"], so_far["valid_entries"], so_far["is_final"]) == (0.9, 2, False)

    finished = harness.post(f"/api/runs/{pk}/finish/")
    assert finished.status_code == 200
    assert finished.json()["status"] == "ended"
    final = finished.json()["final_score"]
    assert final["is_final"] is True
    env = Environment.objects.get(slug=CUMSUM)
    assert final["normalised"] == pytest.approx((env.starting_score - 0.9) / (env.starting_score - env.reference_score))
    attempt = Attempt.objects.get(pk=pk)
    assert (attempt.participant_kind, attempt.source, attempt.external_id) == ("agent", "api", "h1-run-7")
    assert (attempt.agent_name, attempt.agent_model, attempt.end_reason) == ("modular", "o1", "harness")
    assert attempt.user_id is None
    assert [e["score"] for e in harness.get(f"/api/runs/{pk}/score-log/").json()] == [1.2, None, 0.9]


def test_creating_the_same_run_twice_gives_one_run_updated(harness: APIClient, run_id: int) -> None:
    again = harness.post("/api/runs/", {**RUN, "agent_model": "o1-2024-12-17"}, format="json")

    assert again.status_code == 200
    assert again.json()["id"] == run_id
    assert Attempt.objects.filter(source="api").count() == 1
    assert Attempt.objects.get(pk=run_id).agent_model == "o1-2024-12-17"


def test_finishing_twice_changes_nothing(harness: APIClient, run_id: int) -> None:
    first = harness.post(f"/api/runs/{run_id}/finish/").json()
    second = harness.post(f"/api/runs/{run_id}/finish/").json()
    assert first["ended_at"] == second["ended_at"]


def test_a_finished_runs_score_log_is_closed(harness: APIClient, run_id: int) -> None:
    harness.post(f"/api/runs/{run_id}/finish/")
    response = harness.post(f"/api/runs/{run_id}/score-log/", {"elapsed_seconds": 10, "score": 1.0}, format="json")
    assert response.status_code == 400
    assert "run" in response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"elapsed_seconds": 10, "score": "fast"}, "score"),
        ({"elapsed_seconds": -1, "score": 1.0}, "elapsed_seconds"),
        ({"elapsed_seconds": 7201, "score": 1.0}, "elapsed_seconds"),
        ({"elapsed_seconds": "soon", "score": 1.0}, "elapsed_seconds"),
        ({"score": 1.0}, "elapsed_seconds"),
        ({"elapsed_seconds": 10, "score": "Infinity"}, "score"),
        ({"elapsed_seconds": 10, "score": 1.0, "details": [1, 2]}, "details"),
    ],
    ids=[
        "score-not-a-number",
        "negative-elapsed",
        "beyond-run-length",
        "elapsed-not-a-number",
        "no-elapsed",
        "inf",
        "details",
    ],
)
def test_a_bad_score_entry_is_a_400_naming_the_field_and_writes_nothing(
    harness: APIClient, run_id: int, body: dict[str, Any], field: str
) -> None:
    response = harness.post(f"/api/runs/{run_id}/score-log/", body, format="json")

    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not ScoreLogEntry.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"environment": "ai_rd_no_such_thing"}, "environment"),
        ({"time_limit_seconds": -5}, "time_limit_seconds"),
        ({"time_limit_seconds": "long"}, "time_limit_seconds"),
        ({"run_id": ""}, "run_id"),
        ({"agent_name": ""}, "agent_name"),
        ({"started_at": "2024-10-01T10:00:00"}, "started_at"),
    ],
    ids=["unknown-environment", "negative-length", "length-not-a-number", "no-run-id", "no-agent", "naive-time"],
)
def test_a_bad_run_is_a_400_naming_the_field_and_creates_nothing(
    harness: APIClient, change: dict[str, Any], field: str
) -> None:
    response = harness.post("/api/runs/", {**RUN, **change}, format="json")

    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not Attempt.objects.exists()


def test_writes_to_a_run_another_harness_created_are_refused(run_id: int) -> None:
    other = token_client(harness_user("h2"))

    assert (
        other.post(f"/api/runs/{run_id}/score-log/", {"elapsed_seconds": 1, "score": 1.0}, format="json").status_code
        == 403
    )
    assert other.post(f"/api/runs/{run_id}/finish/").status_code == 403
    assert other.post("/api/runs/", RUN, format="json").status_code == 403  # the same run id: not theirs to update
    assert other.get(f"/api/runs/{run_id}/").status_code == 403
    assert other.get("/api/runs/").json() == []
    attempt = Attempt.objects.get(pk=run_id)
    assert (attempt.status, attempt.agent_name, attempt.score_log.count()) == ("running", "modular", 0)


def test_an_admin_may_write_any_harnesss_run(api: ClientFor, admin_user: Any, run_id: int) -> None:
    response = api(admin_user).post(
        f"/api/runs/{run_id}/score-log/", {"elapsed_seconds": 5, "score": 1.0}, format="json"
    )
    assert response.status_code == 201
    assert api(admin_user).post(f"/api/runs/{run_id}/finish/").status_code == 200


def test_experts_reviewers_and_strangers_may_not_use_the_harness_api(
    api: ClientFor, expert: Any, reviewer: Any, no_role_user: Any, run_id: int
) -> None:
    for user in (expert, reviewer, no_role_user):
        assert api(user).post("/api/runs/", {**RUN, "run_id": "x"}, format="json").status_code == 403
        assert api(user).post(f"/api/runs/{run_id}/finish/").status_code == 403
    assert api(None).post("/api/runs/", RUN, format="json").status_code in (401, 403)
    assert Attempt.objects.filter(source="api").count() == 1


def test_api_runs_do_not_appear_among_an_experts_attempts(api: ClientFor, expert: Any, run_id: int) -> None:
    assert api(expert).get(f"/api/attempts/{run_id}/").status_code == 404
    assert run_id not in [a["id"] for a in api(expert).get("/api/attempts/").json()["results"]]


def test_the_server_clock_never_ends_an_api_run_the_harness_is_still_running(harness: APIClient, run_id: int) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from trials.services import attempts_end_overdue

    assert attempts_end_overdue(now=timezone.now() + timedelta(days=2)) == []
    assert Attempt.objects.get(pk=run_id).status == "running"


def test_a_score_entry_updates_the_final_score_with_the_environments_aggregate(harness: APIClient, run_id: int) -> None:
    for elapsed, score in [(10, 1.0), (20, 1.3), (30, 0.8)]:
        harness.post(f"/api/runs/{run_id}/score-log/", {"elapsed_seconds": elapsed, "score": score}, format="json")
    assert AttemptScore.objects.get(attempt_id=run_id).raw == 0.8  # min: lower is better


def test_a_score_write_asks_for_a_leaderboard_recompute(
    harness: APIClient, run_id: int, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        harness.post(f"/api/runs/{run_id}/score-log/", {"elapsed_seconds": 10, "score": 1.0}, format="json")
    assert "_mark_dirty_and_schedule" in [getattr(c, "__name__", "") for c in callbacks]


def test_the_harness_api_is_in_the_openapi_schema(api: ClientFor, admin_user: Any, tmp_path: Any) -> None:
    paths = api(admin_user).get("/api/schema/", {"format": "json"}).json()["paths"]
    assert {"get", "post"} <= set(paths["/api/runs/"])
    assert {"post"} <= set(paths["/api/runs/{id}/score-log/"])
    assert {"post"} <= set(paths["/api/runs/{id}/finish/"])
    assert {"get", "post"} <= set(paths["/api/run-imports/"])
    GENERATOR_STATS.reset()
    call_command("spectacular", "--validate", "--file", str(tmp_path / "schema.yml"))
    schema = (tmp_path / "schema.yml").read_text()
    assert "RunCreate" in schema
    assert "EntryCreate" in schema


def test_an_admin_uploads_a_file_through_the_api_and_follows_its_import(
    api: ClientFor, admin_user: Any, tmp_path: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIA_ROOT = tmp_path
    from django.core.files.uploadedfile import SimpleUploadedFile

    from graders.imports import services
    from tests.graders.run_import_support import metr_row

    body = ("\n".join(__import__("json").dumps(metr_row(f"r{i}")) for i in range(3)) + "\n").encode()
    with django_capture_on_commit_callbacks() as callbacks:
        response = api(admin_user).post(
            "/api/run-imports/",
            {"file": SimpleUploadedFile("runs.jsonl", body), "kind": "metr_runs"},
            format="multipart",
        )
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    assert len(callbacks) == 1  # the Celery job, sent after commit (the worker test runs it for real)
    services.run_import_execute(run_import_id=response.json()["id"])
    done = api(admin_user).get(f"/api/run-imports/{response.json()['id']}/").json()
    assert (done["status"], done["runs_created"], done["total"], done["processed"]) == ("done", 3, 3, 3)


def test_only_admins_upload_run_imports(api: ClientFor, expert: Any) -> None:
    harness_client = token_client(harness_user("h3"))
    assert harness_client.get("/api/run-imports/").status_code == 403
    assert api(expert).get("/api/run-imports/").status_code == 403


def test_an_api_run_is_never_scored_on_this_site(api: ClientFor, admin_user: Any, run_id: int) -> None:
    response = api(admin_user).post(f"/api/attempts/{run_id}/score/")
    assert response.status_code == 400
    assert "harness" in response.json()["attempt"][0]
    assert not Attempt.objects.get(pk=run_id).scoring_jobs.exists()
