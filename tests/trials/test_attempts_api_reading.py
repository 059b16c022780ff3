"""Reading attempts over the REST API: who lists and sees which, by session or token, in a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests import factories
from tests.factories import ClientFor
from tests.trials.attempts_api_support import attempt
from trials.models import Pause

pytestmark = pytest.mark.django_db

__all__ = ["attempt"]  # the support module's fixture, registered by import


def test_expert_lists_only_their_own_attempts(api: ClientFor, expert, other_expert, attempt) -> None:
    factories.AttemptFactory.create(reservation=factories.ReservationFactory.create(expert=other_expert))
    body = api(expert).get("/api/attempts/").json()
    assert body["count"] == 1
    assert [row["id"] for row in body["results"]] == [attempt.pk]
    assert body["results"][0]["elapsed_seconds"] == pytest.approx(3600, abs=5)


def test_admin_lists_everyones_attempts(api: ClientFor, admin_user, other_expert, attempt) -> None:
    theirs = factories.AttemptFactory.create(reservation=factories.ReservationFactory.create(expert=other_expert))
    body = api(admin_user).get("/api/attempts/").json()
    assert {row["id"] for row in body["results"]} == {attempt.pk, theirs.pk}


def test_reviewer_cannot_list_attempts(api: ClientFor, reviewer, attempt) -> None:
    assert api(reviewer).get("/api/attempts/").status_code == 403


def test_anonymous_user_gets_401_for_attempts(api: ClientFor, attempt) -> None:
    response = api(None).get(f"/api/attempts/{attempt.pk}/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_user_without_a_role_cannot_read_attempts(api: ClientFor, no_role_user, attempt) -> None:
    assert api(no_role_user).get("/api/attempts/").status_code == 403


def test_expert_reads_their_attempt_with_a_token(expert, attempt) -> None:
    token = Token.objects.create(user=expert)
    response = APIClient().get(f"/api/attempts/{attempt.pk}/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    assert response.json()["id"] == attempt.pk


def test_expert_cannot_see_someone_elses_attempt(api: ClientFor, other_expert, attempt) -> None:
    assert api(other_expert).get(f"/api/attempts/{attempt.pk}/").status_code == 404


def test_admin_sees_anyones_attempt(api: ClientFor, admin_user, attempt) -> None:
    assert api(admin_user).get(f"/api/attempts/{attempt.pk}/").status_code == 200


def test_attempt_list_takes_a_fixed_number_of_queries(
    api: ClientFor, admin_user, env_cumsum, django_assert_max_num_queries
) -> None:
    now = timezone.now()
    for i in range(12):
        attempt = factories.AttemptFactory.create(
            reservation=factories.ReservationFactory.create(starts_at=now - timedelta(days=i, minutes=5)),
            started_at=now - timedelta(days=i),
        )
        Pause.objects.create(attempt=attempt, reason="break", started_at=now - timedelta(days=i) + timedelta(seconds=1))
    client = api(admin_user)
    # roles, count, one page of attempts with environment/workstation/user, their pauses
    with django_assert_max_num_queries(4):
        response = client.get("/api/attempts/")
    assert response.status_code == 200
    assert response.json()["count"] == 12
    assert all(row["state"] == "paused" for row in response.json()["results"])
