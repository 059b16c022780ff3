"""Reading reservations over the REST API: who lists and sees which, filtered by expert, in few queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests import factories
from tests.factories import ClientFor

pytestmark = pytest.mark.django_db


def test_expert_lists_only_their_own_reservations(api: ClientFor, expert, other_expert, env_cumsum) -> None:
    mine = factories.ReservationFactory.create(expert=expert)
    factories.ReservationFactory.create(expert=other_expert)
    response = api(expert).get("/api/reservations/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert [row["id"] for row in body["results"]] == [mine.pk]
    assert body["results"][0]["state"] == "open"


def test_expert_filter_is_ignored_for_experts(api: ClientFor, expert, other_expert, env_cumsum) -> None:
    factories.ReservationFactory.create(expert=other_expert)
    response = api(expert).get(f"/api/reservations/?expert={other_expert.pk}")
    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_admin_lists_everyones_reservations_and_filters_by_expert(
    api: ClientFor, admin_user, expert, other_expert, env_cumsum
) -> None:
    mine = factories.ReservationFactory.create(expert=expert)
    theirs = factories.ReservationFactory.create(expert=other_expert)
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
    factories.ReservationFactory.create()
    assert api(reviewer).get("/api/reservations/").status_code == 403


def test_expert_reads_their_own_reservation(api: ClientFor, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory.create(expert=expert)
    response = api(expert).get(f"/api/reservations/{reservation.pk}/")
    assert response.status_code == 200
    assert response.json()["id"] == reservation.pk


def test_expert_cannot_see_someone_elses_reservation(api: ClientFor, expert, other_expert, env_cumsum) -> None:
    theirs = factories.ReservationFactory.create(expert=other_expert)
    assert api(expert).get(f"/api/reservations/{theirs.pk}/").status_code == 404


def test_admin_reads_anyones_reservation(api: ClientFor, admin_user, other_expert, env_cumsum) -> None:
    theirs = factories.ReservationFactory.create(expert=other_expert)
    assert api(admin_user).get(f"/api/reservations/{theirs.pk}/").status_code == 200


@pytest.mark.parametrize("pk", ["999999", "abc", "99999999999999999999999"])
def test_unknown_reservation_id_is_404(api: ClientFor, expert, env_cumsum, pk: str) -> None:
    assert api(expert).get(f"/api/reservations/{pk}/").status_code == 404


def test_reservation_shows_the_attempt_started_in_it(api: ClientFor, expert, env_cumsum) -> None:
    attempt = factories.AttemptFactory.create(reservation=factories.ReservationFactory.create(expert=expert))
    body = api(expert).get(f"/api/reservations/{attempt.reservation_id}/").json()
    assert body["attempt"] == attempt.pk


def test_reservation_list_takes_a_fixed_number_of_queries(
    api: ClientFor, admin_user, env_cumsum, django_assert_max_num_queries
) -> None:
    start = timezone.now() - timedelta(minutes=5)
    for i in range(12):
        reservation = factories.ReservationFactory.create(starts_at=start + timedelta(days=i))
        if i % 2:
            factories.AttemptFactory.create(reservation=reservation)
    client = api(admin_user)
    # session/roles lookup, count, one page of rows with their expert, environment, workstation and attempt
    with django_assert_max_num_queries(4):
        response = client.get("/api/reservations/")
    assert response.status_code == 200
    assert response.json()["count"] == 12
    assert sum(row["attempt"] is not None for row in response.json()["results"]) == 6
