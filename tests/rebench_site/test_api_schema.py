"""The OpenAPI schema: it lists the API's paths and generates without a single warning."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS

from tests.factories import ClientFor

pytestmark = pytest.mark.django_db

PATHS = {
    "/api/environments/": {"get"},
    "/api/environments/{slug}/": {"get"},
    "/api/reservations/": {"get", "post"},
    "/api/reservations/{id}/": {"get"},
    "/api/reservations/{id}/cancel/": {"post"},
    "/api/attempts/": {"get", "post"},
    "/api/attempts/{id}/": {"get"},
    "/api/attempts/{id}/pause/": {"post"},
    "/api/attempts/{id}/resume/": {"post"},
    "/api/attempts/{id}/submit/": {"post"},
    "/api/attempts/{id}/notes/": {"get", "post"},
    "/api/attempts/{id}/pauses/": {"post"},
    "/api/attempts/{id}/end/": {"post"},
    "/api/workstations/": {"get", "post"},
    "/api/workstations/{id}/": {"get", "patch"},
    "/api/workstations/{id}/drain/": {"post"},
}


def test_admin_gets_a_schema_listing_every_api_path(api: ClientFor, admin_user) -> None:
    response = api(admin_user).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path, methods in PATHS.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    booking = paths["/api/reservations/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert booking == {"$ref": "#/components/schemas/ReservationCreate"}
    components = response.json()["components"]["schemas"]
    assert set(components["ReservationCreate"]["required"]) == {"environment", "workstation", "starts_at"}
    assert {"elapsed_seconds", "remaining_seconds", "deadline", "server_now"} <= set(
        components["Attempt"]["properties"]
    )


def test_schema_generates_and_validates_without_warnings(tmp_path: Path) -> None:
    GENERATOR_STATS.reset()  # warnings from schemas built earlier in this process are not this run's
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert (tmp_path / "schema.yml").stat().st_size > 0
