"""The red-team API: live score with per-token saliency and substitutions; bad input is a 400 naming the field."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from review.classifier import runtime
from review.classifier.models import RedTeamAttempt
from tests import factories
from tests.review.classifier.conftest import PROMPT

pytestmark = pytest.mark.django_db

TEXT = "The man slipped on the ice and shattered his kneecap."


@pytest.fixture
def attempt(active_classifier, reviewer) -> RedTeamAttempt:
    return RedTeamAttempt.objects.create(
        reviewer=reviewer, prompt=PROMPT, start_text=TEXT, version=active_classifier, started_at=timezone.now()
    )


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def score_url(attempt: RedTeamAttempt) -> str:
    return reverse("api-red-team-score", args=[attempt.pk])


def subs_url(attempt: RedTeamAttempt) -> str:
    return reverse("api-red-team-substitutions", args=[attempt.pk])


def test_score_returns_the_score_and_saliency_per_wordpiece_of_the_real_tokenizer(attempt, reviewer) -> None:
    response = api_for(reviewer).post(score_url(attempt), {"text": TEXT}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    tokens = runtime.encoder_for(attempt.version).tokenizer.tokenize(TEXT)
    assert [t["token"] for t in data["tokens"]] == tokens
    assert [t["index"] for t in data["tokens"]] == list(range(len(tokens)))
    assert all(isinstance(t["saliency"], float) and t["gradient_norm"] > 0 for t in data["tokens"])
    assert data["threshold"] == 0.5
    assert data["passes"] is (data["score"] < 0.5)
    assert data["score"] > 0.5  # an injury, and the classifier knows it


def test_score_refuses_empty_missing_and_oversized_text_naming_the_field(attempt, reviewer, settings) -> None:
    client = api_for(reviewer)
    for body in ({"text": "   "}, {}, {"text": 5}):
        response = client.post(score_url(attempt), body, format="json")
        assert response.status_code == 400, body
        assert "text" in response.json()
    settings.REVIEW_MAX_COMPLETION_BYTES = 1000
    response = client.post(score_url(attempt), {"text": "é" * 501}, format="json")
    assert response.status_code == 400
    assert "1,002 bytes" in response.json()["text"][0]


def test_score_is_only_for_the_attempts_reviewer(attempt) -> None:
    other = factories.reviewer(username="rob")
    assert api_for(other).post(score_url(attempt), {"text": TEXT}, format="json").status_code == 404
    expert = factories.expert(username="ada")
    assert api_for(expert).post(score_url(attempt), {"text": TEXT}, format="json").status_code == 403
    assert APIClient().post(score_url(attempt), {"text": TEXT}, format="json").status_code in {401, 403}


def test_substitutions_for_a_token_lower_the_score_and_are_scored_exactly(attempt, reviewer) -> None:
    client = api_for(reviewer)
    tokens = client.post(score_url(attempt), {"text": TEXT}, format="json").json()
    index = next(t["index"] for t in tokens["tokens"] if t["token"] == "shattered")
    response = client.post(subs_url(attempt), {"text": TEXT, "token_index": index, "limit": 5}, format="json")
    assert response.status_code == 200, response.content
    subs = response.json()["substitutions"]
    assert len(subs) == 5
    assert [s["score"] for s in subs] == sorted(s["score"] for s in subs)
    assert subs[0]["score"] < tokens["score"]
    for s in subs:
        assert s["text"] == TEXT.replace("shattered", s["token"])
        rescored = client.post(score_url(attempt), {"text": s["text"]}, format="json").json()["score"]
        assert rescored == pytest.approx(s["score"], abs=1e-5)


def test_substitutions_refuse_a_bad_token_index_naming_the_field(attempt, reviewer) -> None:
    client = api_for(reviewer)
    for index in (-1, 999, "x"):
        response = client.post(subs_url(attempt), {"text": TEXT, "token_index": index}, format="json")
        assert response.status_code == 400, index
        assert "token_index" in response.json()


def test_scoring_without_an_active_version_is_a_clear_400(classifier_settings, reviewer) -> None:
    attempt = RedTeamAttempt.objects.create(reviewer=reviewer, prompt=PROMPT, started_at=timezone.now())
    response = api_for(reviewer).post(score_url(attempt), {"text": TEXT}, format="json")
    assert response.status_code == 400
    assert "no classifier version is active" in response.json()["version"][0]
