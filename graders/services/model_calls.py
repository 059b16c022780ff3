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
    max_tokens, max_cost, prices = llm.budget_limits(settings)
    return ExpertModel(
        url=url,
        model=str(settings.get("model") or ""),
        key=os.environ.get(package.expert_model_key, ""),
        max_tokens=max_tokens,
        max_cost=max_cost,
        prices=prices,
        max_completion_tokens=int(params.get("max_completion_tokens", llm.DEFAULT_MAX_COMPLETION_TOKENS)),
        timeout=float(params.get("request_timeout", 120)),
    )


def _checked(body: Any, model: ExpertModel) -> tuple[list[Any], int, int]:
    """(messages, n, completion cap) of a body, checked as the scorer's proxy checks it; 400 naming the field."""
    if not isinstance(body, dict):
        raise ModelRefused(400, "The body must be a JSON object.", "invalid_request_error")
    try:
        return llm.checked_request(body, model.max_completion_tokens)
    except llm.InvalidRequest as exc:
        raise ModelRefused(400, str(exc), "invalid_request_error") from None


@transaction.atomic
def model_call_reserve(*, attempt_id: int, body: Any, model: ExpertModel) -> tuple[ModelCall, int]:
    """Check the request and hold its worst case against what the attempt has left; the completion cap a choice gets."""
    messages, n, cap = _checked(body, model)
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
    try:
        reservation = budget.reserve(llm.prompt_token_bound(messages), cap, n)
    except llm.BudgetExceeded as exc:
        raise ModelRefused(429, f"The attempt's model budget: {exc}", "budget_exceeded") from None
    call = ModelCall.objects.create(
        attempt_id=attempt_id, reserved_tokens=reservation.tokens, reserved_cost=reservation.cost
    )
    return call, reservation.per_choice


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
        try:
            client = llm.ChatClient(model.url, api_key=model.key, model=model.model, timeout=model.timeout)
        except llm.EndpointError as exc:  # a URL it can't use (the site's setting): nothing is sent or charged
            raise ModelRefused(502, f"Upstream: {exc.message}", "upstream_error") from None
        call, per_choice = model_call_reserve(attempt_id=attempt.pk, body=body, model=model)
    except ModelRefused as refused:
        return refused.status, refused.payload()
    status, payload, used = llm.forward_reserved(client, body, per_choice)
    model_call_settle(call=call, usage=used, prices=model.prices)
    return status, payload
