"""Starting an attempt over the REST API: only the expert, in their own open reservation, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests import factories
from tests.factories import ClientFor
from trials.models import Attempt

pytestmark = pytest.mark.django_db


CLOCK_FIELDS = {
    "state",
    "elapsed_seconds",
    "remaining_seconds",
    "time_limit_seconds",
    "deadline",
    "pause_reason",
    "server_now",
}
PAYLOAD_FIELDS = CLOCK_FIELDS | {
    "id",
    "user",
    "participant_kind",
    "reservation",
    "environment",
    "workstation",
    "status",
    "end_reason",
    "started_at",
    "ended_at",
    "hard_stop_at",
    "pauses",
    "clock_started_at",
    "preparing",
    "preparation_error",
}


def test_expert_starts_the_attempt_of_an_open_reservation(api: ClientFor, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory.create(expert=expert)
    response = api(expert).post("/api/attempts/", {"reservation": reservation.pk}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == PAYLOAD_FIELDS
    assert body["user"] == {"id": expert.pk, "username": "ada"}
    assert body["participant_kind"] == "human"
    assert body["reservation"] == reservation.pk
    assert body["environment"] == "ai_rd_triton_cumsum"
    assert body["workstation"] == reservation.workstation.name
    assert body["status"] == "running"
    assert body["state"] == "running"
    assert body["end_reason"] == ""
    assert body["time_limit_seconds"] == 8 * 3600
    assert 0 <= body["elapsed_seconds"] < 5
    assert body["remaining_seconds"] == pytest.approx(8 * 3600, abs=5)
    assert body["deadline"] is not None
    assert body["pause_reason"] is None
    # Its environment is being prepared: the clock starts when that is done.
    assert (body["preparing"], body["clock_started_at"], body["preparation_error"]) == ("workspace", None, "")
    assert body["pauses"] == []
    assert Attempt.objects.get().reservation == reservation


def test_starting_an_attempt_again_returns_the_same_one_with_200(api: ClientFor, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory.create(expert=expert)
    first = api(expert).post("/api/attempts/", {"reservation": reservation.pk}, format="json")
    again = api(expert).post("/api/attempts/", {"reservation": reservation.pk}, format="json")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Attempt.objects.count() == 1


def test_expert_cannot_start_an_attempt_in_someone_elses_reservation(
    api: ClientFor, expert, other_expert, env_cumsum
) -> None:
    theirs = factories.ReservationFactory.create(expert=other_expert)
    response = api(expert).post("/api/attempts/", {"reservation": theirs.pk}, format="json")
    # Their reservation is invisible to this expert, so its id is as good as unknown.
    assert response.status_code == 400
    assert set(response.json()) == {"reservation"}
    assert not Attempt.objects.exists()


def test_admin_cannot_start_an_attempt_for_the_expert(api: ClientFor, admin_user, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory.create(expert=expert)
    response = api(admin_user).post("/api/attempts/", {"reservation": reservation.pk}, format="json")
    assert response.status_code == 403
    assert not Attempt.objects.exists()


def test_reviewer_cannot_start_an_attempt(api: ClientFor, reviewer, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory.create(expert=expert)
    assert api(reviewer).post("/api/attempts/", {"reservation": reservation.pk}, format="json").status_code == 403
    assert not Attempt.objects.exists()


@pytest.mark.parametrize("value", [999_999, "abc", None, [1], 10**30])
def test_starting_with_a_bad_reservation_id_is_400(api: ClientFor, expert, env_cumsum, value: object) -> None:
    response = api(expert).post("/api/attempts/", {"reservation": value}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"reservation"}
    assert not Attempt.objects.exists()


def test_starting_without_a_reservation_is_400(api: ClientFor, expert, env_cumsum) -> None:
    response = api(expert).post("/api/attempts/", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"reservation"}


def test_starting_before_the_slot_opens_is_400(api: ClientFor, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory.create(expert=expert, starts_at=timezone.now() + timedelta(hours=3))
    response = api(expert).post("/api/attempts/", {"reservation": reservation.pk}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"reservation"}
    assert not Attempt.objects.exists()


def test_starting_in_a_cancelled_reservation_is_400(api: ClientFor, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory.create(expert=expert, cancelled_at=timezone.now())
    response = api(expert).post("/api/attempts/", {"reservation": reservation.pk}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"reservation"}
    assert not Attempt.objects.exists()
