"""Pauses over the REST API: the expert's breaks, an admin's technical pauses, and pauses added after the fact."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ClientFor
from tests.trials.attempts_api_support import attempt
from trials.models import Attempt, Pause

pytestmark = pytest.mark.django_db

__all__ = ["attempt"]  # the support module's fixture, registered by import


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
