"""The environment's model from the expert's shell: /api/attempts/<id>/model/v1/chat/completions.

RE-Bench's agent held the model's key while it worked; here the shell's requests come through the
attempt's relay, and the site forwards them with the key under the attempt's one budget. The sums
below are made by hand from the reservation rule (prompt bound = 16 + 8 + the message's JSON bytes;
completion = max_tokens, cut to what is left) and the test model's counting (prompt = JSON bytes
// 4 + 1; completion = 4 bytes a token).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from environments.common.llm import LocalChatServer
from graders.models import ModelCall, ScoringJob
from graders.selectors import attempt_model_spend
from tests import factories
from tests.environments.scoring_support import small_configuration
from trials import services
from trials.models import Attempt, Pause
from trials.selectors import attempt_sandbox_request

pytestmark = pytest.mark.django_db
__all__ = ["small_configuration"]

RUST = "ai_rd_rust_codecontests_inference"
KEY = "sk-real-key-the-web-server-holds"
HI = [{"role": "user", "content": "hi"}]  # 33 bytes of JSON: bound 57, counted 9


@pytest.fixture
def model() -> Iterator[LocalChatServer]:
    with LocalChatServer(lambda body: "x" * 400, api_key=KEY, model="served-model") as server:
        yield server


@pytest.fixture
def rust(small_configuration: Any, model: LocalChatServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    small_configuration.RUST_CODECONTESTS_MODEL_URL = model.url
    small_configuration.RUST_CODECONTESTS_MODEL = "the-configured-model"
    small_configuration.RUST_CODECONTESTS_BUDGET_TOKENS = 300
    small_configuration.RUST_CODECONTESTS_BUDGET_USD = 0
    monkeypatch.setenv("RUST_CODECONTESTS_API_KEY", KEY)
    return small_configuration


def attempt_on(slug: str) -> Attempt:
    reservation = factories.ReservationFactory.create(environment=factories.environment(slug))
    return factories.AttemptFactory.create(reservation=reservation)


def ask(attempt: Attempt, token: str, **body: Any) -> Any:
    return APIClient().post(
        f"/api/attempts/{attempt.pk}/model/v1/chat/completions",
        data=json.dumps({"model": "gpt-4", "messages": HI, **body}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Attempt {token}",
    )


def test_the_shell_gets_the_configured_model_with_the_real_key_until_the_attempts_budget_is_spent(
    rust: Any, model: LocalChatServer
) -> None:
    attempt = attempt_on(RUST)
    token = services.attempt_token_issue(attempt=attempt)
    first = ask(attempt, token, max_tokens=100)
    assert first.status_code == 200, first.content
    assert first.json()["choices"][0]["message"]["content"] == "x" * 400
    assert KEY not in first.content.decode()
    # The model saw the real key and the configured model, whatever the shell asked for.
    assert set(model.authorizations) == {f"Bearer {KEY}"}
    assert model.requests[0]["model"] == "the-configured-model"
    # Used: 9 prompt + 100 completion = 109 of 300.
    assert [(c.tokens, c.reserved_tokens) for c in ModelCall.objects.filter(attempt=attempt)] == [(109, 157)]
    assert ask(attempt, token, max_tokens=100).status_code == 200  # 218 used
    # 300 - 218 - 57 = 25 completion tokens left: the request is cut to 25 (100 bytes), 34 used.
    third = ask(attempt, token, max_tokens=100)
    assert third.status_code == 200
    assert model.requests[-1]["max_tokens"] == 25
    assert len(third.json()["choices"][0]["message"]["content"]) == 100
    # 300 - 252 - 57 < 0: refused before it reaches the model.
    sent = len(model.requests)
    fourth = ask(attempt, token, max_tokens=100)
    assert fourth.status_code == 429
    assert fourth.json()["error"]["type"] == "budget_exceeded"
    assert len(model.requests) == sent
    # The next scoring run is given what the shell left.
    job = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test")
    # Money too, at the default prices ($0.5 / $1.5 a million): 2 x (9 x 0.5 + 100 x 1.5) + (9 x 0.5 + 25 x 1.5)
    # = 351 millionths of a dollar.
    assert attempt_model_spend(job) == {"tokens": 252, "cost": pytest.approx(0.000351)}


def test_a_paused_attempt_another_attempts_token_and_a_bad_body_are_refused_and_cost_nothing(
    rust: Any, model: LocalChatServer
) -> None:
    attempt, other = attempt_on(RUST), attempt_on(RUST)
    token = services.attempt_token_issue(attempt=attempt)
    other_token = services.attempt_token_issue(attempt=other)
    assert ask(attempt, other_token).status_code in (401, 403)
    bad = ask(attempt, token, n=0)
    assert bad.status_code == 400
    assert "n must be" in bad.json()["error"]["message"]
    assert ask(attempt, token, stream=True).status_code == 400
    services.attempt_pause(attempt=attempt, by=attempt.user, reason=Pause.Reason.BREAK)
    paused = ask(attempt, token)
    assert paused.status_code == 409
    assert paused.json()["error"]["type"] == "attempt_paused"
    assert model.requests == []
    assert not ModelCall.objects.exists()


def test_an_environment_without_a_model_answers_404_and_its_sandbox_gets_no_model_port(rust: Any) -> None:
    triton = attempt_on("ai_rd_triton_cumsum")
    token = services.attempt_token_issue(attempt=triton)
    assert ask(triton, token).status_code == 404
    assert attempt_sandbox_request(triton).model_port == 0
    assert attempt_sandbox_request(attempt_on(RUST)).model_port == rust.SANDBOX_MODEL_PORT


def test_a_model_that_refuses_is_a_502_and_charges_nothing(rust: Any, model: LocalChatServer) -> None:
    attempt = attempt_on(RUST)
    token = services.attempt_token_issue(attempt=attempt)
    rust.RUST_CODECONTESTS_MODEL_URL = model.url
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RUST_CODECONTESTS_API_KEY", "sk-a-wrong-key")  # the model answers 401
        answer = ask(attempt, token)
    assert answer.status_code == 502
    assert answer.json()["error"]["type"] == "upstream_error"
    assert [c.tokens for c in ModelCall.objects.filter(attempt=attempt)] == [0]


def test_a_full_configuration_missing_its_dataset_answers_503_naming_it(rust: Any) -> None:
    attempt = attempt_on(RUST)
    token = services.attempt_token_issue(attempt=attempt)
    rust.ENVIRONMENT_CONFIGURATION = "full"
    rust.RUST_CODECONTESTS_DATASET = ""
    answer = ask(attempt, token)
    assert answer.status_code == 503
    assert "RUST_CODECONTESTS_DATASET" in answer.json()["error"]["message"]


def test_an_admin_cant_spend_an_experts_budget(rust: Any, model: LocalChatServer) -> None:
    attempt = attempt_on(RUST)
    client = APIClient()
    client.force_authenticate(factories.admin())
    answer = client.post(f"/api/attempts/{attempt.pk}/model/v1/chat/completions", data={"messages": HI}, format="json")
    assert answer.status_code == 404
    assert model.requests == []


CHAT_RL = "ai_rd_nanogpt_chat_rl"


def test_chat_rls_judge_answers_the_shell_with_its_key_and_model_a_verdicts_few_tokens_under_the_judge_budget(
    small_configuration: Any, model: LocalChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_configuration.CHAT_RL_JUDGE_URL = model.url
    small_configuration.CHAT_RL_JUDGE_MODEL = "the-judge"
    small_configuration.CHAT_RL_JUDGE_BUDGET_TOKENS = 100
    small_configuration.CHAT_RL_JUDGE_BUDGET_USD = 0
    monkeypatch.setenv("CHAT_RL_JUDGE_API_KEY", KEY)
    attempt = attempt_on(CHAT_RL)
    assert attempt_sandbox_request(attempt).model_port == small_configuration.SANDBOX_MODEL_PORT
    token = services.attempt_token_issue(attempt=attempt)
    first = ask(attempt, token, max_tokens=2000)  # an essay asked of the judge: it gets a verdict's worth
    assert first.status_code == 200, first.content
    assert first.json()["choices"][0]["message"]["content"] == "x" * 20  # 5 tokens of 4 bytes
    assert model.requests[0]["max_tokens"] == 5
    assert model.requests[0]["model"] == "the-judge"
    assert set(model.authorizations) == {f"Bearer {KEY}"}
    # Reserved 57 + 5 = 62 each, used 9 + 5 = 14: three calls (42 used), then 100 - 42 - 57 = 1
    # completion token left (used 9 + 1 = 10: 52), then 100 - 52 - 57 < 0: refused.
    for _ in range(3):
        assert ask(attempt, token, max_tokens=5).status_code == 200
    assert model.requests[-1]["max_tokens"] == 1
    refused = ask(attempt, token)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "budget_exceeded"
    assert [c.tokens for c in ModelCall.objects.filter(attempt=attempt).order_by("pk")] == [14, 14, 14, 10]
    # At the judge's default prices ($0.05 / $0.25 a million): 3 x (9 x 0.05 + 5 x 0.25) + (9 x 0.05 + 1 x 0.25)
    # = 5.1 + 0.7 = 5.8 millionths of a dollar.
    job = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test")
    assert attempt_model_spend(job) == {"tokens": 52, "cost": pytest.approx(0.0000058)}


def test_a_model_url_the_site_cant_use_is_a_502_naming_it_and_charges_nothing(rust: Any) -> None:
    attempt = attempt_on(RUST)
    token = services.attempt_token_issue(attempt=attempt)
    rust.RUST_CODECONTESTS_MODEL_URL = "ftp://models.example.org/v1"
    answer = ask(attempt, token)
    assert answer.status_code == 502
    assert answer.json()["error"]["type"] == "upstream_error"
    assert "ftp://models.example.org/v1" in answer.json()["error"]["message"]
    assert not ModelCall.objects.filter(attempt=attempt).exists()
