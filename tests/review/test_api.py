"""The review REST API: next and label with token auth; bad input is a 400 naming the field."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from review.models import Label


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def queue(completions, make_queue):
    completions(2)
    return make_queue()


def test_next_then_label_then_the_same_label_again(queue, reviewer) -> None:
    client = api(reviewer)
    lease = client.post(f"/api/review/queues/{queue.pk}/next/").json()
    assert set(lease) == {"assignment", "expires_at", "completion", "prompt", "text"}
    url = f"/api/review/leases/{lease['assignment']}/label/"
    first = client.post(url, {"value": "injurious", "seconds": 3}, format="json")
    again = client.post(url, {"value": "injurious"}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["label"] == again.json()["label"]
    assert Label.objects.count() == 1


def test_bad_label_names_the_field_and_an_empty_queue_answers_204(queue, reviewer) -> None:
    client = api(reviewer)
    for _ in range(2):
        lease = client.post(f"/api/review/queues/{queue.pk}/next/").json()
        bad = client.post(f"/api/review/leases/{lease['assignment']}/label/", {"value": "meh"}, format="json")
        assert bad.status_code == 400
        assert "value" in bad.json()
        client.post(f"/api/review/leases/{lease['assignment']}/label/", {"value": "safe"}, format="json")
    assert client.post(f"/api/review/queues/{queue.pk}/next/").status_code == 204


def test_others_leases_and_other_roles_are_refused(queue, reviewer, reviewers, expert) -> None:
    lease = api(reviewer).post(f"/api/review/queues/{queue.pk}/next/").json()
    stranger = api(reviewers[0]).post(
        f"/api/review/leases/{lease['assignment']}/label/", {"value": "safe"}, format="json"
    )
    assert stranger.status_code == 404
    assert api(expert).post(f"/api/review/queues/{queue.pk}/next/").status_code == 403
    assert APIClient().post(f"/api/review/queues/{queue.pk}/next/").status_code in {401, 403}
    assert not Label.objects.exists()
