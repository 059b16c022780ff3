"""Booking over the REST API: who may book, for whom, and with which credentials."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tests.factories import ClientFor
from tests.trials.reservations_api_support import booking, tomorrow_at
from trials.models import Reservation

pytestmark = pytest.mark.django_db


PAYLOAD_FIELDS = {
    "id",
    "expert",
    "environment",
    "workstation",
    "starts_at",
    "ends_at",
    "cancelled_at",
    "created_at",
    "gpus",
    "state",
    "attempt",
}


def test_expert_books_a_slot_by_workstation_id(api: ClientFor, expert, env_cumsum, workstation) -> None:
    starts_at = tomorrow_at(9)
    response = api(expert).post("/api/reservations/", booking(workstation), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == PAYLOAD_FIELDS
    assert body["expert"] == {"id": expert.pk, "username": "ada"}
    assert body["environment"] == "ai_rd_triton_cumsum"
    assert body["workstation"] == {"id": workstation.pk, "name": "h100-a"}
    assert body["gpus"] == [0]
    assert body["state"] == "upcoming"
    assert body["attempt"] is None
    assert body["cancelled_at"] is None
    reservation = Reservation.objects.get(pk=body["id"])
    assert reservation.expert == expert
    assert reservation.created_by == expert
    assert reservation.starts_at == starts_at
    # No ends_at given: the shortest slot, time limit plus set-up.
    assert reservation.ends_at == starts_at + timedelta(hours=8, minutes=30)


def test_expert_books_a_slot_by_workstation_name_with_an_explicit_end(
    api: ClientFor, expert, env_cumsum, workstation
) -> None:
    starts_at = tomorrow_at(9)
    ends_at = starts_at + timedelta(hours=10)
    body = booking(workstation, workstation="h100-a", ends_at=ends_at.isoformat())
    response = api(expert).post("/api/reservations/", body, format="json")
    assert response.status_code == 201, response.json()
    reservation = Reservation.objects.get(pk=response.json()["id"])
    assert reservation.workstation == workstation
    assert reservation.ends_at == ends_at


def test_start_time_in_another_time_zone_is_stored_as_the_same_instant(
    api: ClientFor, expert, env_cumsum, workstation
) -> None:
    starts_at = tomorrow_at(9)
    in_tokyo = starts_at.astimezone(timezone.get_fixed_timezone(9 * 60)).isoformat()
    response = api(expert).post("/api/reservations/", booking(workstation, starts_at=in_tokyo), format="json")
    assert response.status_code == 201, response.json()
    assert Reservation.objects.get().starts_at == starts_at


def test_expert_books_with_a_token_header(expert, env_cumsum, workstation) -> None:
    from rest_framework.test import APIClient

    token = Token.objects.create(user=expert)
    client = APIClient()
    response = client.post(
        "/api/reservations/", booking(workstation), format="json", HTTP_AUTHORIZATION=f"Token {token.key}"
    )
    assert response.status_code == 201, response.json()
    assert Reservation.objects.get().expert == expert


def test_a_wrong_token_is_401(env_cumsum, workstation) -> None:
    from rest_framework.test import APIClient

    response = APIClient().get("/api/reservations/", HTTP_AUTHORIZATION="Token not-a-real-token")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_admin_books_for_an_expert(api: ClientFor, admin_user, expert, env_cumsum, workstation) -> None:
    response = api(admin_user).post("/api/reservations/", booking(workstation, expert=expert.pk), format="json")
    assert response.status_code == 201, response.json()
    reservation = Reservation.objects.get()
    assert reservation.expert == expert
    assert reservation.created_by == admin_user


def test_expert_may_name_themselves_as_the_expert(api: ClientFor, expert, env_cumsum, workstation) -> None:
    response = api(expert).post("/api/reservations/", booking(workstation, expert=expert.pk), format="json")
    assert response.status_code == 201, response.json()


def test_expert_cannot_book_for_someone_else(api: ClientFor, expert, other_expert, env_cumsum, workstation) -> None:
    response = api(expert).post("/api/reservations/", booking(workstation, expert=other_expert.pk), format="json")
    assert response.status_code == 403
    assert not Reservation.objects.exists()


def test_reviewer_cannot_book(api: ClientFor, reviewer, env_cumsum, workstation) -> None:
    response = api(reviewer).post("/api/reservations/", booking(workstation), format="json")
    assert response.status_code == 403
    assert not Reservation.objects.exists()


def test_user_without_a_role_cannot_book(api: ClientFor, no_role_user, env_cumsum, workstation) -> None:
    response = api(no_role_user).post("/api/reservations/", booking(workstation), format="json")
    assert response.status_code == 403
    assert not Reservation.objects.exists()


def test_anonymous_booking_is_401(api: ClientFor, env_cumsum, workstation) -> None:
    response = api(None).post("/api/reservations/", booking(workstation), format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert not Reservation.objects.exists()
