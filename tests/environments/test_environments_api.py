"""The environments catalogue: readable by every role, refused to anonymous and role-less users."""

from __future__ import annotations

import pytest

from tests.factories import ClientFor

pytestmark = pytest.mark.django_db

FIELDS = {
    "slug",
    "title",
    "description",
    "raw_score",
    "direction",
    "aggregation",
    "starting_score",
    "reference_score",
    "gpus_min",
    "gpus_max",
    "gpu_model",
    "time_limit_seconds",
    "scores_visible",
    "is_active",
}


def test_expert_lists_the_environments(api: ClientFor, expert, env_cumsum) -> None:
    response = api(expert).get("/api/environments/")
    assert response.status_code == 200
    rows = {row["slug"]: row for row in response.json()["results"]}
    assert "ai_rd_triton_cumsum" in rows
    assert set(rows["ai_rd_triton_cumsum"]) == FIELDS
    assert rows["ai_rd_triton_cumsum"]["time_limit_seconds"] == 8 * 3600


def test_reviewer_reads_one_environment_by_slug(api: ClientFor, reviewer, env_cumsum) -> None:
    response = api(reviewer).get("/api/environments/ai_rd_triton_cumsum/")
    assert response.status_code == 200
    body = response.json()
    assert body["slug"] == "ai_rd_triton_cumsum"
    assert body["gpus_min"] == env_cumsum.gpus_min
    assert body["reference_score"] == env_cumsum.reference_score


def test_unknown_environment_slug_is_404(api: ClientFor, expert, env_cumsum) -> None:
    assert api(expert).get("/api/environments/no_such_env/").status_code == 404


def test_closed_environment_is_hidden_from_experts_but_shown_to_admins(
    api: ClientFor, expert, admin_user, env_cumsum
) -> None:
    env_cumsum.is_active = False
    env_cumsum.save(update_fields=["is_active"])
    assert api(expert).get("/api/environments/ai_rd_triton_cumsum/").status_code == 404
    slugs = [row["slug"] for row in api(expert).get("/api/environments/").json()["results"]]
    assert "ai_rd_triton_cumsum" not in slugs
    response = api(admin_user).get("/api/environments/ai_rd_triton_cumsum/")
    assert response.status_code == 200
    assert response.json()["is_active"] is False


def test_anonymous_user_gets_401_with_a_token_challenge(api: ClientFor, env_cumsum) -> None:
    response = api(None).get("/api/environments/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_user_without_a_role_is_refused_environments(api: ClientFor, no_role_user, env_cumsum) -> None:
    assert api(no_role_user).get("/api/environments/").status_code == 403


def test_environments_are_read_only_even_for_admins(api: ClientFor, admin_user, env_cumsum) -> None:
    assert api(admin_user).post("/api/environments/", {"slug": "x"}, format="json").status_code == 405
    response = api(admin_user).patch("/api/environments/ai_rd_triton_cumsum/", {"title": "x"}, format="json")
    assert response.status_code == 405
