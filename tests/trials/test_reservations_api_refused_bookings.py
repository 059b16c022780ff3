"""Booking over the REST API: every bad input, and every slot the rules refuse, answered 400 by field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests import factories
from tests.factories import ClientFor
from tests.trials.reservations_api_support import booking, tomorrow_at
from trials.models import Reservation, Workstation

pytestmark = pytest.mark.django_db


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


def test_overlapping_booking_of_one_gpu_is_400(api: ClientFor, expert, other_expert, env_cumsum) -> None:
    workstation = factories.WorkstationFactory.create(name="h100-single", gpu_count=1)
    assert api(expert).post("/api/reservations/", booking(workstation), format="json").status_code == 201
    later = (tomorrow_at(9) + timedelta(hours=3)).isoformat()
    response = api(other_expert).post("/api/reservations/", booking(workstation, starts_at=later), format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"starts_at"}
    assert Reservation.objects.count() == 1


def test_expert_cannot_hold_two_overlapping_slots(api: ClientFor, expert, env_cumsum, workstation) -> None:
    other_box = factories.WorkstationFactory.create(name="h100-b")
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
    small = factories.WorkstationFactory.create(name="cpu-only", gpu_count=0, gpu_model="")
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
