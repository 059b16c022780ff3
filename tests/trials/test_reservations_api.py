"""Booking over the REST API: who may book, list and cancel, and every bad input answered 400 by field."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tests import factories
from tests.factories import ClientFor
from trials.models import Reservation, Workstation

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
    "state",
    "attempt",
}


def tomorrow_at(hour: int) -> datetime:
    return (timezone.now() + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)


def booking(workstation: Workstation, /, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "environment": "ai_rd_triton_cumsum",
        "workstation": workstation.pk,
        "starts_at": tomorrow_at(9).isoformat(),
    }
    body.update(overrides)
    return body


# --- booking -----------------------------------------------------------------------------------


def test_expert_books_a_slot_by_workstation_id(api: ClientFor, expert, env_cumsum, workstation) -> None:
    starts_at = tomorrow_at(9)
    response = api(expert).post("/api/reservations/", booking(workstation), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == PAYLOAD_FIELDS
    assert body["expert"] == {"id": expert.pk, "username": "ada"}
    assert body["environment"] == "ai_rd_triton_cumsum"
    assert body["workstation"] == {"id": workstation.pk, "name": "h100-a"}
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


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"environment": "no_such_env"}, "environment"),
        ({"environment": ["ai_rd_triton_cumsum"]}, "environment"),
        ({"environment": None}, "environment"),
        ({"workstation": "no-such-box"}, "workstation"),
        ({"workstation": 999_999}, "workstation"),
        ({"workstation": "999999"}, "workstation"),
        ({"workstation": 10**30}, "workstation"),
        ({"workstation": True}, "workstation"),
        ({"workstation": {"id": 1}}, "workstation"),
        ({"starts_at": "2031-05-01T09:00:00"}, "starts_at"),
        ({"starts_at": "2031-05-01"}, "starts_at"),
        ({"starts_at": "tomorrow at nine"}, "starts_at"),
        ({"starts_at": "2031-13-01T09:00:00Z"}, "starts_at"),
        ({"starts_at": "0001-01-01T00:00:00+05:00"}, "starts_at"),
        ({"starts_at": "2031-05-01T09:00:00+25:00"}, "starts_at"),
        ({"starts_at": 1_900_000_000}, "starts_at"),
        ({"starts_at": ""}, "starts_at"),
        ({"starts_at": None}, "starts_at"),
        ({"ends_at": "2031-05-01T18:00:00"}, "ends_at"),
        ({"ends_at": "later"}, "ends_at"),
        ({"expert": "ada"}, "expert"),
        ({"expert": 999_999}, "expert"),
    ],
)
def test_malformed_booking_is_400_naming_the_field(
    api: ClientFor, expert, env_cumsum, workstation, overrides: dict[str, Any], field: str
) -> None:
    response = api(expert).post("/api/reservations/", booking(workstation, **overrides), format="json")
    assert response.status_code == 400
    assert set(response.json()) == {field}
    assert not Reservation.objects.exists()


@pytest.mark.parametrize("missing", ["environment", "workstation", "starts_at"])
def test_booking_without_a_required_field_is_400_naming_it(
    api: ClientFor, expert, env_cumsum, workstation, missing: str
) -> None:
    body = booking(workstation)
    del body[missing]
    response = api(expert).post("/api/reservations/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {missing}
    assert not Reservation.objects.exists()


def test_booking_body_that_is_not_an_object_is_400(api: ClientFor, expert, env_cumsum, workstation) -> None:
    response = api(expert).post("/api/reservations/", [booking(workstation)], format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"non_field_errors"}
    assert not Reservation.objects.exists()


def test_booking_with_broken_json_is_400(api: ClientFor, expert, env_cumsum, workstation) -> None:
    response = api(expert).post("/api/reservations/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert not Reservation.objects.exists()


def test_booking_in_the_past_is_400(api: ClientFor, expert, env_cumsum, workstation) -> None:
    an_hour_ago = (timezone.now() - timedelta(hours=1)).isoformat()
    response = api(expert).post("/api/reservations/", booking(workstation, starts_at=an_hour_ago), format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"starts_at"}
    assert not Reservation.objects.exists()


def test_booking_beyond_the_horizon_is_400(api: ClientFor, expert, env_cumsum, workstation) -> None:
    far = (timezone.now() + timedelta(days=3650)).isoformat()
    response = api(expert).post("/api/reservations/", booking(workstation, starts_at=far), format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"starts_at"}


def test_slot_shorter_than_the_time_limit_is_400_on_ends_at(api: ClientFor, expert, env_cumsum, workstation) -> None:
    starts_at = tomorrow_at(9)
    for ends_at in (starts_at + timedelta(hours=2), starts_at - timedelta(hours=2)):
        body = booking(workstation, ends_at=ends_at.isoformat())
        response = api(expert).post("/api/reservations/", body, format="json")
        assert response.status_code == 400
        assert set(response.json()) == {"ends_at"}
    assert not Reservation.objects.exists()


def test_overlapping_booking_on_one_workstation_is_400(
    api: ClientFor, expert, other_expert, env_cumsum, workstation
) -> None:
    assert api(expert).post("/api/reservations/", booking(workstation), format="json").status_code == 201
    later = (tomorrow_at(9) + timedelta(hours=3)).isoformat()
    response = api(other_expert).post("/api/reservations/", booking(workstation, starts_at=later), format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"starts_at"}
    assert Reservation.objects.count() == 1


def test_expert_cannot_hold_two_overlapping_slots(api: ClientFor, expert, env_cumsum, workstation) -> None:
    other_box = factories.WorkstationFactory(name="h100-b")
    assert api(expert).post("/api/reservations/", booking(workstation), format="json").status_code == 201
    response = api(expert).post("/api/reservations/", booking(other_box), format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"starts_at"}
    assert Reservation.objects.count() == 1


def test_closed_environment_is_400_on_environment(api: ClientFor, expert, env_cumsum, workstation) -> None:
    env_cumsum.is_active = False
    env_cumsum.save(update_fields=["is_active"])
    response = api(expert).post("/api/reservations/", booking(workstation), format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"environment"}
    assert not Reservation.objects.exists()


def test_workstation_without_enough_gpus_is_400_on_workstation(api: ClientFor, expert, env_cumsum) -> None:
    small = factories.WorkstationFactory(name="cpu-only", gpu_count=0, gpu_model="")
    response = api(expert).post("/api/reservations/", booking(small), format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"workstation"}
    assert not Reservation.objects.exists()


@pytest.mark.parametrize("status", [Workstation.Status.DRAINING, Workstation.Status.OFFLINE])
def test_workstation_out_of_service_is_400_on_workstation(
    api: ClientFor, expert, env_cumsum, workstation, status: str
) -> None:
    workstation.status = status
    workstation.save(update_fields=["status"])
    response = api(expert).post("/api/reservations/", booking(workstation), format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"workstation"}
    assert not Reservation.objects.exists()


def test_admin_booking_for_a_reviewer_is_400_on_expert(
    api: ClientFor, admin_user, reviewer, env_cumsum, workstation
) -> None:
    response = api(admin_user).post("/api/reservations/", booking(workstation, expert=reviewer.pk), format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"expert"}
    assert not Reservation.objects.exists()


# --- reading -----------------------------------------------------------------------------------


def test_expert_lists_only_their_own_reservations(api: ClientFor, expert, other_expert, env_cumsum) -> None:
    mine = factories.ReservationFactory(expert=expert)
    factories.ReservationFactory(expert=other_expert)
    response = api(expert).get("/api/reservations/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert [row["id"] for row in body["results"]] == [mine.pk]
    assert body["results"][0]["state"] == "open"


def test_expert_filter_is_ignored_for_experts(api: ClientFor, expert, other_expert, env_cumsum) -> None:
    factories.ReservationFactory(expert=other_expert)
    response = api(expert).get(f"/api/reservations/?expert={other_expert.pk}")
    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_admin_lists_everyones_reservations_and_filters_by_expert(
    api: ClientFor, admin_user, expert, other_expert, env_cumsum
) -> None:
    mine = factories.ReservationFactory(expert=expert)
    theirs = factories.ReservationFactory(expert=other_expert)
    everyone = api(admin_user).get("/api/reservations/").json()
    assert {row["id"] for row in everyone["results"]} == {mine.pk, theirs.pk}
    filtered = api(admin_user).get(f"/api/reservations/?expert={other_expert.pk}").json()
    assert [row["id"] for row in filtered["results"]] == [theirs.pk]


@pytest.mark.parametrize("value", ["ada", "-1", "1.5"])
def test_admin_filter_by_a_non_id_is_400_on_expert(api: ClientFor, admin_user, env_cumsum, value: str) -> None:
    response = api(admin_user).get("/api/reservations/", {"expert": value})
    assert response.status_code == 400
    assert set(response.json()) == {"expert"}


def test_reviewer_cannot_list_reservations(api: ClientFor, reviewer, env_cumsum) -> None:
    factories.ReservationFactory()
    assert api(reviewer).get("/api/reservations/").status_code == 403


def test_expert_reads_their_own_reservation(api: ClientFor, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory(expert=expert)
    response = api(expert).get(f"/api/reservations/{reservation.pk}/")
    assert response.status_code == 200
    assert response.json()["id"] == reservation.pk


def test_expert_cannot_see_someone_elses_reservation(api: ClientFor, expert, other_expert, env_cumsum) -> None:
    theirs = factories.ReservationFactory(expert=other_expert)
    assert api(expert).get(f"/api/reservations/{theirs.pk}/").status_code == 404


def test_admin_reads_anyones_reservation(api: ClientFor, admin_user, other_expert, env_cumsum) -> None:
    theirs = factories.ReservationFactory(expert=other_expert)
    assert api(admin_user).get(f"/api/reservations/{theirs.pk}/").status_code == 200


@pytest.mark.parametrize("pk", ["999999", "abc", "99999999999999999999999"])
def test_unknown_reservation_id_is_404(api: ClientFor, expert, env_cumsum, pk: str) -> None:
    assert api(expert).get(f"/api/reservations/{pk}/").status_code == 404


def test_reservation_shows_the_attempt_started_in_it(api: ClientFor, expert, env_cumsum) -> None:
    attempt = factories.AttemptFactory(reservation=factories.ReservationFactory(expert=expert))
    body = api(expert).get(f"/api/reservations/{attempt.reservation_id}/").json()
    assert body["attempt"] == attempt.pk


def test_reservation_list_takes_a_fixed_number_of_queries(
    api: ClientFor, admin_user, env_cumsum, django_assert_max_num_queries
) -> None:
    start = timezone.now() - timedelta(minutes=5)
    for i in range(12):
        reservation = factories.ReservationFactory(starts_at=start + timedelta(days=i))
        if i % 2:
            factories.AttemptFactory(reservation=reservation)
    client = api(admin_user)
    # session/roles lookup, count, one page of rows with their expert, environment, workstation and attempt
    with django_assert_max_num_queries(4):
        response = client.get("/api/reservations/")
    assert response.status_code == 200
    assert response.json()["count"] == 12
    assert sum(row["attempt"] is not None for row in response.json()["results"]) == 6


# --- cancelling --------------------------------------------------------------------------------


def test_expert_cancels_their_upcoming_reservation(api: ClientFor, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory(expert=expert, starts_at=tomorrow_at(9))
    response = api(expert).post(f"/api/reservations/{reservation.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"
    assert response.json()["cancelled_at"] is not None
    reservation.refresh_from_db()
    assert reservation.cancelled_at is not None


def test_cancelling_twice_is_harmless(api: ClientFor, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory(expert=expert, starts_at=tomorrow_at(9))
    first = api(expert).post(f"/api/reservations/{reservation.pk}/cancel/").json()
    second = api(expert).post(f"/api/reservations/{reservation.pk}/cancel/")
    assert second.status_code == 200
    assert second.json()["cancelled_at"] == first["cancelled_at"]


def test_expert_cannot_cancel_someone_elses_reservation(api: ClientFor, expert, other_expert, env_cumsum) -> None:
    theirs = factories.ReservationFactory(expert=other_expert, starts_at=tomorrow_at(9))
    assert api(expert).post(f"/api/reservations/{theirs.pk}/cancel/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.cancelled_at is None


def test_reviewer_cannot_cancel_a_reservation(api: ClientFor, reviewer, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory(expert=expert, starts_at=tomorrow_at(9))
    assert api(reviewer).post(f"/api/reservations/{reservation.pk}/cancel/").status_code == 403
    reservation.refresh_from_db()
    assert reservation.cancelled_at is None


def test_expert_cannot_cancel_a_slot_that_has_begun_but_an_admin_can(
    api: ClientFor, expert, admin_user, env_cumsum
) -> None:
    reservation = factories.ReservationFactory(expert=expert)  # began five minutes ago
    response = api(expert).post(f"/api/reservations/{reservation.pk}/cancel/")
    assert response.status_code == 400
    assert set(response.json()) == {"non_field_errors"}
    reservation.refresh_from_db()
    assert reservation.cancelled_at is None
    assert api(admin_user).post(f"/api/reservations/{reservation.pk}/cancel/").status_code == 200


def test_reservation_with_a_started_attempt_cannot_be_cancelled(api: ClientFor, expert, admin_user, env_cumsum) -> None:
    attempt = factories.AttemptFactory(reservation=factories.ReservationFactory(expert=expert))
    response = api(admin_user).post(f"/api/reservations/{attempt.reservation_id}/cancel/")
    assert response.status_code == 400
    assert set(response.json()) == {"non_field_errors"}
    assert Reservation.objects.get(pk=attempt.reservation_id).cancelled_at is None
