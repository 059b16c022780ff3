"""Cancelling over the REST API: the expert before the slot begins, an admin after, nobody once an attempt started."""

from __future__ import annotations

import pytest

from tests import factories
from tests.factories import ClientFor
from tests.trials.reservations_api_support import tomorrow_at
from trials.models import Reservation

pytestmark = pytest.mark.django_db


def test_expert_cancels_their_upcoming_reservation(api: ClientFor, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory.create(expert=expert, starts_at=tomorrow_at(9))
    response = api(expert).post(f"/api/reservations/{reservation.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"
    assert response.json()["cancelled_at"] is not None
    reservation.refresh_from_db()
    assert reservation.cancelled_at is not None


def test_cancelling_twice_is_harmless(api: ClientFor, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory.create(expert=expert, starts_at=tomorrow_at(9))
    first = api(expert).post(f"/api/reservations/{reservation.pk}/cancel/").json()
    second = api(expert).post(f"/api/reservations/{reservation.pk}/cancel/")
    assert second.status_code == 200
    assert second.json()["cancelled_at"] == first["cancelled_at"]


def test_expert_cannot_cancel_someone_elses_reservation(api: ClientFor, expert, other_expert, env_cumsum) -> None:
    theirs = factories.ReservationFactory.create(expert=other_expert, starts_at=tomorrow_at(9))
    assert api(expert).post(f"/api/reservations/{theirs.pk}/cancel/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.cancelled_at is None


def test_reviewer_cannot_cancel_a_reservation(api: ClientFor, reviewer, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory.create(expert=expert, starts_at=tomorrow_at(9))
    assert api(reviewer).post(f"/api/reservations/{reservation.pk}/cancel/").status_code == 403
    reservation.refresh_from_db()
    assert reservation.cancelled_at is None


def test_expert_cannot_cancel_a_slot_that_has_begun_but_an_admin_can(
    api: ClientFor, expert, admin_user, env_cumsum
) -> None:
    reservation = factories.ReservationFactory.create(expert=expert)  # began five minutes ago
    response = api(expert).post(f"/api/reservations/{reservation.pk}/cancel/")
    assert response.status_code == 400
    assert set(response.json()) == {"non_field_errors"}
    reservation.refresh_from_db()
    assert reservation.cancelled_at is None
    assert api(admin_user).post(f"/api/reservations/{reservation.pk}/cancel/").status_code == 200


def test_reservation_with_a_started_attempt_cannot_be_cancelled(api: ClientFor, expert, admin_user, env_cumsum) -> None:
    attempt = factories.AttemptFactory.create(reservation=factories.ReservationFactory.create(expert=expert))
    response = api(admin_user).post(f"/api/reservations/{attempt.reservation_id}/cancel/")
    assert response.status_code == 400
    assert set(response.json()) == {"non_field_errors"}
    assert attempt.reservation_id is not None
    assert Reservation.objects.get(pk=attempt.reservation_id).cancelled_at is None
