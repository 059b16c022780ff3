"""Attempts over the REST API: starting, the clock, pauses, notes, submitting, and what admins may do."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests import factories
from tests.factories import ClientFor
from trials.models import Attempt, Note, Pause

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
}


@pytest.fixture
def attempt(expert, env_cumsum, workstation):
    """The expert's running attempt, started an hour ago in a slot that opened just before."""
    started = timezone.now() - timedelta(hours=1)
    reservation = factories.ReservationFactory(
        expert=expert, workstation=workstation, starts_at=started - timedelta(minutes=5)
    )
    return factories.AttemptFactory(reservation=reservation, started_at=started)


# --- starting ----------------------------------------------------------------------------------


def test_expert_starts_the_attempt_of_an_open_reservation(api: ClientFor, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory(expert=expert)
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
    assert body["pauses"] == []
    assert Attempt.objects.get().reservation == reservation


def test_starting_an_attempt_again_returns_the_same_one_with_200(api: ClientFor, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory(expert=expert)
    first = api(expert).post("/api/attempts/", {"reservation": reservation.pk}, format="json")
    again = api(expert).post("/api/attempts/", {"reservation": reservation.pk}, format="json")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Attempt.objects.count() == 1


def test_expert_cannot_start_an_attempt_in_someone_elses_reservation(
    api: ClientFor, expert, other_expert, env_cumsum
) -> None:
    theirs = factories.ReservationFactory(expert=other_expert)
    response = api(expert).post("/api/attempts/", {"reservation": theirs.pk}, format="json")
    # Their reservation is invisible to this expert, so its id is as good as unknown.
    assert response.status_code == 400
    assert set(response.json()) == {"reservation"}
    assert not Attempt.objects.exists()


def test_admin_cannot_start_an_attempt_for_the_expert(api: ClientFor, admin_user, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory(expert=expert)
    response = api(admin_user).post("/api/attempts/", {"reservation": reservation.pk}, format="json")
    assert response.status_code == 403
    assert not Attempt.objects.exists()


def test_reviewer_cannot_start_an_attempt(api: ClientFor, reviewer, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory(expert=expert)
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
    reservation = factories.ReservationFactory(expert=expert, starts_at=timezone.now() + timedelta(hours=3))
    response = api(expert).post("/api/attempts/", {"reservation": reservation.pk}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"reservation"}
    assert not Attempt.objects.exists()


def test_starting_in_a_cancelled_reservation_is_400(api: ClientFor, expert, env_cumsum) -> None:
    reservation = factories.ReservationFactory(expert=expert, cancelled_at=timezone.now())
    response = api(expert).post("/api/attempts/", {"reservation": reservation.pk}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"reservation"}
    assert not Attempt.objects.exists()


# --- reading -----------------------------------------------------------------------------------


def test_expert_lists_only_their_own_attempts(api: ClientFor, expert, other_expert, attempt) -> None:
    factories.AttemptFactory(reservation=factories.ReservationFactory(expert=other_expert))
    body = api(expert).get("/api/attempts/").json()
    assert body["count"] == 1
    assert [row["id"] for row in body["results"]] == [attempt.pk]
    assert body["results"][0]["elapsed_seconds"] == pytest.approx(3600, abs=5)


def test_admin_lists_everyones_attempts(api: ClientFor, admin_user, other_expert, attempt) -> None:
    theirs = factories.AttemptFactory(reservation=factories.ReservationFactory(expert=other_expert))
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
        attempt = factories.AttemptFactory(
            reservation=factories.ReservationFactory(starts_at=now - timedelta(days=i, minutes=5)),
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


# --- pause and resume --------------------------------------------------------------------------


def test_expert_pauses_for_a_break_and_resumes(api: ClientFor, expert, attempt) -> None:
    paused = api(expert).post(f"/api/attempts/{attempt.pk}/pause/", {}, format="json")
    assert paused.status_code == 200, paused.json()
    assert paused.json()["state"] == "paused"
    assert paused.json()["pause_reason"] == "break"
    assert paused.json()["deadline"] is not None  # the slot's hard stop still stands
    resumed = api(expert).post(f"/api/attempts/{attempt.pk}/resume/")
    assert resumed.status_code == 200
    assert resumed.json()["state"] == "running"
    assert resumed.json()["pause_reason"] is None
    [pause] = resumed.json()["pauses"]
    assert pause["reason"] == "break"
    assert pause["ended_at"] is not None


def test_expert_pause_note_is_kept(api: ClientFor, expert, attempt) -> None:
    body = {"reason": "break", "note": "lunch"}
    assert api(expert).post(f"/api/attempts/{attempt.pk}/pause/", body, format="json").status_code == 200
    assert Pause.objects.get().note == "lunch"


@pytest.mark.parametrize("reason", ["nap", "", None, 3, "scoring", "technical"])
def test_bad_pause_reason_is_400_on_reason(api: ClientFor, expert, attempt, reason: object) -> None:
    response = api(expert).post(f"/api/attempts/{attempt.pk}/pause/", {"reason": reason}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"reason"}
    assert not Pause.objects.exists()


def test_pausing_a_paused_attempt_is_400(api: ClientFor, expert, attempt) -> None:
    assert api(expert).post(f"/api/attempts/{attempt.pk}/pause/").status_code == 200
    response = api(expert).post(f"/api/attempts/{attempt.pk}/pause/")
    assert response.status_code == 400
    assert set(response.json()) == {"attempt"}
    assert Pause.objects.count() == 1


def test_resuming_a_running_attempt_is_400(api: ClientFor, expert, attempt) -> None:
    response = api(expert).post(f"/api/attempts/{attempt.pk}/resume/")
    assert response.status_code == 400
    assert set(response.json()) == {"attempt"}


def test_resuming_a_submitted_attempt_is_400(api: ClientFor, expert, attempt) -> None:
    assert api(expert).post(f"/api/attempts/{attempt.pk}/submit/").status_code == 200
    response = api(expert).post(f"/api/attempts/{attempt.pk}/resume/")
    assert response.status_code == 400
    assert set(response.json()) == {"attempt"}


def test_pausing_a_submitted_attempt_is_400(api: ClientFor, expert, attempt) -> None:
    assert api(expert).post(f"/api/attempts/{attempt.pk}/submit/").status_code == 200
    response = api(expert).post(f"/api/attempts/{attempt.pk}/pause/")
    assert response.status_code == 400
    assert set(response.json()) == {"attempt"}
    assert not Pause.objects.exists()


def test_expert_cannot_pause_someone_elses_attempt(api: ClientFor, other_expert, attempt) -> None:
    response = api(other_expert).post(f"/api/attempts/{attempt.pk}/pause/", {"reason": "break"}, format="json")
    assert response.status_code == 404
    assert not Pause.objects.exists()


def test_expert_cannot_resume_someone_elses_attempt(api: ClientFor, expert, other_expert, attempt) -> None:
    api(expert).post(f"/api/attempts/{attempt.pk}/pause/")
    assert api(other_expert).post(f"/api/attempts/{attempt.pk}/resume/").status_code == 404
    assert Pause.objects.get().ended_at is None


def test_reviewer_cannot_pause_an_attempt(api: ClientFor, reviewer, attempt) -> None:
    assert api(reviewer).post(f"/api/attempts/{attempt.pk}/pause/").status_code == 403
    assert not Pause.objects.exists()


def test_admin_pauses_someones_attempt_for_a_technical_problem_and_resumes_it(
    api: ClientFor, admin_user, expert, attempt
) -> None:
    body = {"reason": "technical", "note": "GPU fell off the bus"}
    response = api(admin_user).post(f"/api/attempts/{attempt.pk}/pause/", body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["pause_reason"] == "technical"
    # The expert can't end an admin's pause; the admin can.
    refused = api(expert).post(f"/api/attempts/{attempt.pk}/resume/")
    assert refused.status_code == 400
    assert Pause.objects.get().ended_at is None
    assert api(admin_user).post(f"/api/attempts/{attempt.pk}/resume/").json()["state"] == "running"


# --- submit and end ----------------------------------------------------------------------------


def test_submitting_twice_is_200_both_times(api: ClientFor, expert, attempt) -> None:
    first = api(expert).post(f"/api/attempts/{attempt.pk}/submit/")
    second = api(expert).post(f"/api/attempts/{attempt.pk}/submit/")
    assert first.status_code == second.status_code == 200
    assert first.json()["state"] == second.json()["state"] == "ended"
    assert first.json()["end_reason"] == "submitted"
    assert first.json()["ended_at"] == second.json()["ended_at"]
    assert first.json()["remaining_seconds"] is None
    assert first.json()["deadline"] is None


def test_submitting_while_paused_closes_the_pause(api: ClientFor, expert, attempt) -> None:
    api(expert).post(f"/api/attempts/{attempt.pk}/pause/")
    body = api(expert).post(f"/api/attempts/{attempt.pk}/submit/").json()
    assert body["state"] == "ended"
    assert all(p["ended_at"] is not None for p in body["pauses"])


def test_expert_cannot_submit_someone_elses_attempt(api: ClientFor, other_expert, attempt) -> None:
    assert api(other_expert).post(f"/api/attempts/{attempt.pk}/submit/").status_code == 404
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.RUNNING


def test_admin_cannot_submit_for_the_expert(api: ClientFor, admin_user, attempt) -> None:
    assert api(admin_user).post(f"/api/attempts/{attempt.pk}/submit/").status_code == 403
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.RUNNING


def test_admin_ends_an_attempt_and_ending_again_is_harmless(api: ClientFor, admin_user, attempt) -> None:
    first = api(admin_user).post(f"/api/attempts/{attempt.pk}/end/")
    assert first.status_code == 200
    assert first.json()["status"] == "ended"
    assert first.json()["end_reason"] == "admin"
    second = api(admin_user).post(f"/api/attempts/{attempt.pk}/end/")
    assert second.status_code == 200
    assert second.json()["ended_at"] == first.json()["ended_at"]


def test_expert_cannot_end_their_attempt_as_an_admin(api: ClientFor, expert, attempt) -> None:
    assert api(expert).post(f"/api/attempts/{attempt.pk}/end/").status_code == 403
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.RUNNING


# --- notes -------------------------------------------------------------------------------------


def test_expert_writes_a_note_and_reads_the_notes(api: ClientFor, expert, attempt) -> None:
    response = api(expert).post(f"/api/attempts/{attempt.pk}/notes/", {"body": "  tried tiling  "}, format="json")
    assert response.status_code == 201, response.json()
    note = response.json()
    assert note["body"] == "tried tiling"
    assert note["author"] == {"id": expert.pk, "username": "ada"}
    assert note["elapsed_seconds"] == pytest.approx(3600, abs=5)
    listed = api(expert).get(f"/api/attempts/{attempt.pk}/notes/")
    assert listed.status_code == 200
    assert [n["id"] for n in listed.json()] == [note["id"]]


def test_admin_reads_someones_notes_but_cannot_write_one(api: ClientFor, admin_user, expert, attempt) -> None:
    api(expert).post(f"/api/attempts/{attempt.pk}/notes/", {"body": "first"}, format="json")
    assert len(api(admin_user).get(f"/api/attempts/{attempt.pk}/notes/").json()) == 1
    response = api(admin_user).post(f"/api/attempts/{attempt.pk}/notes/", {"body": "hi"}, format="json")
    assert response.status_code == 403
    assert Note.objects.count() == 1


def test_expert_cannot_read_someone_elses_notes(api: ClientFor, other_expert, attempt) -> None:
    assert api(other_expert).get(f"/api/attempts/{attempt.pk}/notes/").status_code == 404
    response = api(other_expert).post(f"/api/attempts/{attempt.pk}/notes/", {"body": "x"}, format="json")
    assert response.status_code == 404
    assert not Note.objects.exists()


def test_reviewer_cannot_read_notes(api: ClientFor, reviewer, attempt) -> None:
    assert api(reviewer).get(f"/api/attempts/{attempt.pk}/notes/").status_code == 403


@pytest.mark.parametrize("body", [{}, {"body": ""}, {"body": "   "}, {"body": None}, {"body": "x" * 10_001}])
def test_empty_or_huge_note_is_400_on_body(api: ClientFor, expert, attempt, body: dict) -> None:
    response = api(expert).post(f"/api/attempts/{attempt.pk}/notes/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"body"}
    assert not Note.objects.exists()


def test_note_on_an_ended_attempt_is_400(api: ClientFor, expert, attempt) -> None:
    api(expert).post(f"/api/attempts/{attempt.pk}/submit/")
    response = api(expert).post(f"/api/attempts/{attempt.pk}/notes/", {"body": "late"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"attempt"}
    assert not Note.objects.exists()


# --- pauses after the fact (admins) ------------------------------------------------------------


def _past_pause(attempt: Attempt, **overrides: object) -> dict[str, object]:
    start = attempt.started_at + timedelta(minutes=10)
    body: dict[str, object] = {
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(minutes=20)).isoformat(),
        "reason": "technical",
        "note": "outage",
    }
    body.update(overrides)
    return body


def test_admin_gives_time_back_with_a_pause_after_the_fact(api: ClientFor, admin_user, attempt) -> None:
    response = api(admin_user).post(f"/api/attempts/{attempt.pk}/pauses/", _past_pause(attempt), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["elapsed_seconds"] == pytest.approx(40 * 60, abs=5)
    assert body["state"] == "running"
    [pause] = body["pauses"]
    assert (pause["reason"], pause["note"]) == ("technical", "outage")
    pause_row = Pause.objects.get()
    assert pause_row.created_by == admin_user


def test_expert_cannot_add_a_pause_after_the_fact(api: ClientFor, expert, attempt) -> None:
    response = api(expert).post(f"/api/attempts/{attempt.pk}/pauses/", _past_pause(attempt), format="json")
    assert response.status_code == 403
    assert not Pause.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"reason": "break"}, "reason"),
        ({"reason": "scoring"}, "reason"),
        ({"started_at": "2030-01-01T10:00:00"}, "started_at"),
        ({"started_at": "yesterday"}, "started_at"),
        ({"ended_at": "2030-01-01T10:00:00"}, "ended_at"),
        ({"started_at": None}, "started_at"),
        ({"note": "x" * 501}, "note"),
    ],
)
def test_malformed_pause_after_the_fact_is_400_naming_the_field(
    api: ClientFor, admin_user, attempt, overrides: dict[str, object], field: str
) -> None:
    body = _past_pause(attempt, **overrides)
    response = api(admin_user).post(f"/api/attempts/{attempt.pk}/pauses/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {field}
    assert not Pause.objects.exists()


def test_pause_ending_before_it_starts_or_in_the_future_is_400_on_ended_at(api: ClientFor, admin_user, attempt) -> None:
    start = attempt.started_at + timedelta(minutes=10)
    for ended_at in (start - timedelta(minutes=1), timezone.now() + timedelta(hours=1)):
        body = _past_pause(attempt, ended_at=ended_at.isoformat())
        response = api(admin_user).post(f"/api/attempts/{attempt.pk}/pauses/", body, format="json")
        assert response.status_code == 400
        assert set(response.json()) == {"ended_at"}
    assert not Pause.objects.exists()


def test_pause_starting_before_the_attempt_is_400_on_started_at(api: ClientFor, admin_user, attempt) -> None:
    body = _past_pause(attempt, started_at=(attempt.started_at - timedelta(minutes=1)).isoformat())
    response = api(admin_user).post(f"/api/attempts/{attempt.pk}/pauses/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"started_at"}
    assert not Pause.objects.exists()
