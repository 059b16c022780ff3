"""Ending an attempt over the REST API: the expert submits, an admin ends, each harmless twice."""

from __future__ import annotations

import pytest

from tests.factories import ClientFor
from tests.trials.attempts_api_support import attempt
from trials.models import Attempt

pytestmark = pytest.mark.django_db

__all__ = ["attempt"]  # the support module's fixture, registered by import


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
