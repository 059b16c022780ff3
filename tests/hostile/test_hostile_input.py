"""A hostile HTTP client: whatever it sends, the answer is a clear refusal (a 400 naming the field, a
message in the page, a 404), never a 500, and nothing is half-written.

Run on PostgreSQL in CI: an id past a bigint's range is a database error there, not on SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from graders.models import ScoreLogEntry
from review import services as review_services
from review.models import Completion, ImportJob
from tests import factories
from tests.graders.test_agent_runs_api import token_client
from tests.review.conftest import make_completions
from trials.models import Attempt, Reservation

pytestmark = pytest.mark.django_db

DEEP = "[" * 100_000 + "]" * 100_000
HUGE_ID = "9" * 20


@pytest.fixture
def harness() -> APIClient:
    factories.environment()
    return token_client(factories.UserFactory.create(username="harness-1", roles=["harness"]))


RUN = {"run_id": "r1", "environment": "ai_rd_triton_cumsum", "agent_name": "a"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("started_at", "9999-12-31T00:00:00Z"),
        ("started_at", "0001-01-01T00:00:00Z"),
        ("time_limit_seconds", 1e12),
        ("time_limit_seconds", 1e308),
        ("time_limit_seconds", "NaN"),
        ("time_limit_seconds", -5),
    ],
)
def test_a_run_from_the_far_future_or_of_absurd_length_is_a_400_naming_the_field_and_the_lists_still_load(
    harness: APIClient, admin_user: Any, field: str, value: object
) -> None:
    response = harness.post("/api/runs/", {**RUN, field: value}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Attempt.objects.exists()
    admin = Client()
    admin.force_login(admin_user)
    assert admin.get("/attempts/").status_code == 200
    assert token_client(admin_user).get("/api/attempts/").status_code == 200


def test_an_entry_at_an_infinite_or_nan_time_is_a_400(harness: APIClient) -> None:
    run = harness.post("/api/runs/", {**RUN, "time_limit_seconds": 3600}, format="json").json()["id"]
    for elapsed in ("Infinity", "NaN", 1e308):
        response = harness.post(
            f"/api/runs/{run}/score-log/", {"elapsed_seconds": elapsed, "score": 1.0}, format="json"
        )
        assert response.status_code == 400, (elapsed, response.content)
        assert "elapsed_seconds" in response.json()
    response = harness.post(f"/api/runs/{run}/score-log/", {"elapsed_seconds": 5, "score": "Infinity"}, format="json")
    assert response.status_code == 400
    assert "score" in response.json()
    assert not ScoreLogEntry.objects.exists()


@pytest.mark.parametrize("path", ["/api/runs/", "/api/reservations/", "/api/workstations/"])
def test_a_deeply_nested_json_body_is_a_400_not_a_recursion_error(admin_user: Any, path: str) -> None:
    response = token_client(admin_user).post(path, DEEP, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "nested" in response.json()["detail"]


def test_a_json_body_over_the_size_limit_is_a_400(admin_user: Any, settings: Any) -> None:
    settings.JSON_MAX_BYTES = 1000
    body = json.dumps({"name": "x" * 2000})
    response = token_client(admin_user).post("/api/workstations/", body, content_type="application/json")
    assert response.status_code == 400
    assert "bytes" in response.json()["detail"]


@pytest.fixture
def queue(admin_user: Any) -> Any:
    make_completions(3)
    return review_services.queue_create(created_by=admin_user, name="Q", policy="random", seed=1)


@pytest.mark.parametrize(
    "body", [{"exclude": ["abc"]}, {"exclude": [HUGE_ID]}, {"exclude": "1"}, {"exclude": [{"a": 1}]}, [1, 2]]
)
def test_review_next_with_a_bad_exclude_is_a_400_and_leases_nothing(queue: Any, reviewer: Any, body: object) -> None:
    response = token_client(reviewer).post(f"/api/review/queues/{queue.pk}/next/", body, format="json")
    assert response.status_code == 400, response.content
    assert not queue.assignments.exists()


@pytest.mark.parametrize(
    "body", [["injurious"], {"value": ["safe"]}, {"value": "safe", "seconds": "NaN"}, {"value": "safe", "note": {}}]
)
def test_a_label_body_that_is_not_a_label_is_a_400(queue: Any, reviewer: Any, body: object) -> None:
    client = token_client(reviewer)
    lease = client.post(f"/api/review/queues/{queue.pk}/next/").json()
    response = client.post(f"/api/review/leases/{lease['assignment']}/label/", body, format="json")
    assert response.status_code == 400, response.content
    assert not queue.labels.exists()


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_the_booking_and_schedule_pages_at_the_calendars_ends_show_today_with_a_message(
    expert: Any, admin_user: Any, day: str
) -> None:
    factories.environment()
    client = Client()
    client.force_login(expert)
    page = client.get(f"/book/ai_rd_triton_cumsum/?day={day}")
    assert page.status_code == 200
    assert "Pick a day between" in page.content.decode()
    client.force_login(admin_user)
    page = client.get(f"/schedule/?day={day}")
    assert page.status_code == 200
    assert "Pick a day between" in page.content.decode()


def test_an_expert_filter_past_a_keys_range_is_a_400_naming_it(admin_user: Any) -> None:
    response = token_client(admin_user).get(f"/api/reservations/?expert={HUGE_ID}")
    assert response.status_code == 400
    assert "expert" in response.json()


def test_a_completion_import_with_a_deeply_nested_line_fails_naming_the_line(admin_user: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = b'{"prompt": "p", "text": "t"}\n' + f'{{"prompt": "p", "text": {DEEP}}}\n'.encode()
    job = review_services.import_job_create(
        created_by=admin_user, upload=SimpleUploadedFile("c.jsonl", data), fmt="jsonl"
    )
    job = review_services.import_job_run(job_id=job.pk)
    assert job.status == ImportJob.Status.FAILED
    assert job.error.startswith("line 2:")
    assert "nested" in job.error
    assert not Completion.objects.exists()


# --- every page and endpoint, every query parameter, hostile values ---------------------------------

HOSTILE_VALUES = [
    "",
    "x",
    "-1",
    "0",
    HUGE_ID,
    "9" * 40,
    "1e308",
    "nan",
    "²",
    "9999-12-31",
    "0001-01-01",
    "\x00",
    "[]",
    "a" * 3000,
]
# Every parameter a page or endpoint reads, and the usual ones a client might try.
PARAMETERS = [
    "day",
    "status",
    "expert",
    "terminal",
    "download",
    "exclude",
    "version",
    "target_recall",
    "environment",
    "group",
    "limit",
    "offset",
    "format",
    "page",
    "q",
    "next",
]


def _paths(patterns: list[Any], prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _paths(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def _concrete(path: str, ids: dict[str, str]) -> Iterator[str]:
    """The path with its parameters filled: an existing object's id, one that is not there, and one past a key."""
    path = path.lstrip("^").rstrip("$").replace("\\.(?P<format>[a-z0-9]+)/?", "")
    for pk in (ids["pk"], "0", HUGE_ID):
        yield (
            "/"
            + path.replace("(?P<pk>[^/.]+)", pk)
            .replace("(?P<slug>[-a-zA-Z0-9_]+)", ids["slug"])
            .replace("<int:pk>", pk)
            .replace("<slug:slug>", ids["slug"])
            .replace("<str:job_id>", "nope")
            .replace("<str:table>.<str:fmt>", "curves.csv")
            .replace("<str:table>", "curves")
            .replace("^", "")
            .replace("$", "")
        )


# Every path is asked as each role with every parameter hostile at once, and as the admin (who sees
# the most) with one parameter at a time: with all of them, one refused early (an unknown ?format=)
# would hide what another does further on. In shards, so parallel workers share the requests.
SHARDS = {"admin": 2, "expert": 2, "reviewer": 2, "admin, one parameter at a time": 6}


@pytest.mark.parametrize(
    ("who", "shard", "shards"), [(who, shard, count) for who, count in SHARDS.items() for shard in range(count)]
)
def test_no_page_or_endpoint_answers_a_hostile_query_string_with_a_500(
    admin_user: Any, expert: Any, reviewer: Any, who: str, shard: int, shards: int
) -> None:
    attempt = factories.AttemptFactory.create(user=expert, reservation__expert=expert)
    ids = {"pk": str(attempt.pk), "slug": attempt.environment.slug}
    paths = sorted(
        {
            concrete
            for path in _paths(get_resolver().url_patterns)
            if not path.startswith(("admin/", "static/", "api/schema")) and "(?P<format>" not in path
            for concrete in _concrete(path, ids)
        }
    )
    assert len(paths) > 60
    user = {"admin": admin_user, "expert": expert, "reviewer": reviewer}[who.split(",")[0]]
    client = Client(raise_request_exception=False)
    client.force_login(user)
    if who.endswith("at a time"):
        queries = [{name: value} for name in PARAMETERS for value in (HUGE_ID, "9" * 40, "²", "-1")]
        paths = [p for p in paths if "/0/" not in p and HUGE_ID not in p]
    else:
        queries = [dict.fromkeys(PARAMETERS, value) for value in HOSTILE_VALUES]
    failures = []
    for path in paths[shard::shards]:
        for query in queries:
            response = client.get(path, query)
            if response.status_code >= 500:
                failures.append((user.username, path, urlencode(query)[:60], response.status_code))
    assert failures == []


@pytest.mark.parametrize("kind", ["json", "form"])
def test_a_nul_character_in_a_field_is_a_400_not_a_database_error(expert: Any, kind: str) -> None:
    """PostgreSQL refuses NUL even in a lookup: a workstation "name" with one was a 500 (found by schemathesis)."""
    factories.environment()
    client = token_client(expert)
    body = {"environment": "ai_rd_triton_cumsum", "workstation": "gpu\x00box", "starts_at": "2030-01-01T09:00Z"}
    if kind == "json":
        response = client.post("/api/reservations/", body, format="json")
    else:
        response = client.post("/api/reservations/", urlencode(body), content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400, response.content
    assert not Reservation.objects.exists()
    assert client.get("/api/reservations/", {"expert": "1\x00"}).status_code == 400
    # Multipart is for uploads only: elsewhere it is refused as a media type, before any field is read.
    assert client.post("/api/reservations/", body, format="multipart").status_code == 415
