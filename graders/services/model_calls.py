"""The environment's model, called from the expert's shell, under the attempt's one budget.

RE-Bench's agent held the model's key while it worked; here the key stays on the web server. The
shell's requests come through the attempt's relay (`Authorization: Attempt <token>`), are checked
and reserved at their worst case against what the attempt has left (its scoring runs and its earlier
calls: graders.selectors.attempt_model_spend_total) under the attempt's row lock, forwarded with
the real key and the configured model, and settled with the usage the model reports. The same
reservation rules as the scorer's budget proxy (environments.common.llm).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from environments import packages
from environments.common import llm
from graders.models import ModelCall
from graders.selectors import attempt_model_spend_total
from trials.models import Attempt

MAX_N = 16


@dataclass(frozen=True)
class ExpertModel:
    url: str
    model: str
    key: str
    max_tokens: int | None
    max_cost: float | None
    prices: llm.Prices
    max_completion_tokens: int
    timeout: float


class ModelRefused(Exception):
    """The request is not forwarded: the HTTP status and an OpenAI-style error to answer with."""

    def __init__(self, status: int, message: str, kind: str) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind

    def payload(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind}}


def expert_model_for(attempt: Attempt) -> ExpertModel | None:
    """The attempt's environment's model, if it offers one to the shell and an endpoint is set.

    ModelRefused(503) when the environment's configuration can't be read (a `full` one missing a path).
    """
    package = packages.find(attempt.environment.slug)
    if package is None or not package.expert_model_key:
        return None
    try:
        document = package.configuration_document()
    except packages.ConfigurationError as exc:
        raise ModelRefused(503, f"The environment's configuration is incomplete: {exc}", "unavailable") from None
    settings, params = document.get("settings") or {}, document.get("params") or {}
    url = str(settings.get("model_url") or "")
    if not url:
        return None
    return ExpertModel(
        url=url,
        model=str(settings.get("model") or ""),
        key=os.environ.get(package.expert_model_key, ""),
        max_tokens=int(settings["budget_tokens"]) if settings.get("budget_tokens") else None,
        max_cost=float(settings["budget_cost"]) if settings.get("budget_cost") else None,
        prices=llm.Prices(float(settings.get("price_input") or 0), float(settings.get("price_output") or 0)),
        max_completion_tokens=int(params.get("max_completion_tokens", llm.DEFAULT_MAX_COMPLETION_TOKENS)),
        timeout=float(params.get("request_timeout", 120)),
    )


def _checked(body: Any) -> tuple[list[Any], int, int | None]:
    """(messages, n, requested max tokens) of a chat-completions body; ModelRefused(400) naming the field."""
    if not isinstance(body, dict):
        raise ModelRefused(400, "The body must be a JSON object.", "invalid_request_error")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ModelRefused(400, "messages must be a non-empty list.", "invalid_request_error")
    if body.get("stream"):
        raise ModelRefused(400, "stream: streaming is not supported here.", "invalid_request_error")
    n = body.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise ModelRefused(400, f"n must be an integer from 1 to {MAX_N}.", "invalid_request_error")
    requested = body.get("max_completion_tokens", body.get("max_tokens"))
    if requested is not None and (isinstance(requested, bool) or not isinstance(requested, int) or requested < 1):
        raise ModelRefused(400, "max_tokens must be a positive integer.", "invalid_request_error")
    return messages, n, requested


@transaction.atomic
def model_call_reserve(*, attempt_id: int, body: Any, model: ExpertModel) -> tuple[ModelCall, dict[str, Any]]:
    """Check the request and hold its worst case against what the attempt has left; the body to forward."""
    messages, n, requested = _checked(body)
    attempt = Attempt.objects.select_for_update(of=("self",)).prefetch_related("pauses").get(pk=attempt_id)
    if not attempt.is_running:
        raise ModelRefused(409, "The attempt has ended.", "attempt_not_running")
    if attempt.open_pause() is not None or attempt.is_preparing:
        raise ModelRefused(409, "The attempt is paused: the model answers while its clock runs.", "attempt_paused")
    spent = attempt_model_spend_total(attempt_id)
    budget = llm.Budget(
        max_tokens=model.max_tokens,
        max_cost=model.max_cost,
        prices=model.prices,
        spent_tokens=int(spent["tokens"]),
        spent_cost=float(spent["cost"]),
    )
    cap = min(model.max_completion_tokens, requested or model.max_completion_tokens)
    try:
        reservation = budget.reserve(llm.prompt_token_bound(messages), cap, n)
    except llm.BudgetExceeded as exc:
        raise ModelRefused(429, f"The attempt's model budget: {exc}", "budget_exceeded") from None
    call = ModelCall.objects.create(
        attempt_id=attempt_id, reserved_tokens=reservation.tokens, reserved_cost=reservation.cost
    )
    forwarded = {k: v for k, v in body.items() if k not in ("max_completion_tokens", "model")}
    forwarded.update(model=model.model, max_tokens=reservation.per_choice)
    return call, forwarded


def model_call_settle(*, call: ModelCall, usage: llm.Usage | None, prices: llm.Prices) -> None:
    """What the call used (None: unknown, charged at its worst case)."""
    tokens = call.reserved_tokens if usage is None else usage.total_tokens
    cost = call.reserved_cost if usage is None else prices.cost(usage.prompt_tokens, usage.completion_tokens)
    ModelCall.objects.filter(pk=call.pk).update(tokens=tokens, cost=cost, settled_at=timezone.now())


def model_call_forward(*, attempt: Attempt, body: Any) -> tuple[int, dict[str, Any]]:
    """One chat-completions request from the shell: (HTTP status, JSON answer)."""
    try:
        model = expert_model_for(attempt)
        if model is None:
            raise ModelRefused(404, "This environment offers no model to the shell.", "not_found")
        call, forwarded = model_call_reserve(attempt_id=attempt.pk, body=body, model=model)
    except ModelRefused as refused:
        return refused.status, refused.payload()
    try:
        client = llm.ChatClient(model.url, api_key=model.key, model=model.model, timeout=model.timeout)
        payload = client.post(forwarded)
        completion = llm.parse_completion(payload)
    except llm.EndpointError as exc:
        # Refused upstream: nothing was generated. Otherwise it may have run: the worst case stands.
        model_call_settle(call=call, usage=llm.Usage() if exc.status is not None else None, prices=model.prices)
        return 502, {"error": {"message": f"Upstream: {exc.message}", "type": "upstream_error"}}
    model_call_settle(call=call, usage=completion.usage if completion.usage.total_tokens else None, prices=model.prices)
    return 200, payload
