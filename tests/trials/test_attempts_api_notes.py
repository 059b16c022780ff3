"""An attempt's notes over the REST API: the expert writes them, an admin reads them, bad ones are 400."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import ClientFor
from tests.trials.attempts_api_support import attempt
from trials.models import Note

pytestmark = pytest.mark.django_db

__all__ = ["attempt"]  # the support module's fixture, registered by import


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
def test_empty_or_huge_note_is_400_on_body(api: ClientFor, expert, attempt, body: dict[str, Any]) -> None:
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
