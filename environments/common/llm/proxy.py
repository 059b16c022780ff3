"""The budget proxy: an endpoint for a scaffold that forwards to the real one within a budget."""

from __future__ import annotations

import os
import secrets
from http.server import BaseHTTPRequestHandler
from typing import Any

from .budget import Budget, BudgetExceeded, prompt_token_bound
from .client import ChatClient, EndpointError, Usage, parse_completion
from .servers import _error, _LocalServer, _read_json_body, _send_json

DEFAULT_MAX_COMPLETION_TOKENS = 4096
MAX_CHOICES = 16


class InvalidRequest(ValueError):
    """A chat-completions body that is not forwarded within a budget (a 400), the reason in words."""


def checked_request(body: dict[str, Any], max_completion_tokens: int) -> tuple[list[Any], int, int]:
    """(messages, n, the most completion tokens a choice may ask for) of a body to forward within a budget.

    Shared by the scorer's proxy and the site's forwarding of the shell's calls (graders.services.model_calls).
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty list.")
    if body.get("stream"):
        raise InvalidRequest("Streaming is not supported: a budget settles each request whole.")
    n = body.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CHOICES:
        raise InvalidRequest(f"n must be an integer from 1 to {MAX_CHOICES}.")
    requested = body.get("max_completion_tokens", body.get("max_tokens"))
    if requested is not None and (isinstance(requested, bool) or not isinstance(requested, int) or requested < 1):
        raise InvalidRequest("max_tokens must be a positive integer.")
    return messages, n, min(max_completion_tokens, requested or max_completion_tokens)


def forward_reserved(
    upstream: ChatClient, body: dict[str, Any], per_choice: int
) -> tuple[int, dict[str, Any], Usage | None]:
    """Send `body` with the upstream's model and `max_tokens` cut to the reservation's `per_choice`.

    Returns the HTTP status and JSON answer, and the usage to settle the reservation with: what the
    endpoint reported; zero when it refused (nothing was generated); None when unknown (it may have
    run: the worst case stands).
    """
    forwarded = {k: v for k, v in body.items() if k not in ("max_completion_tokens", "model")}
    forwarded.update(model=upstream.model, max_tokens=per_choice)
    try:
        payload = upstream.post(forwarded)
        completion = parse_completion(payload)
    except EndpointError as exc:
        used = Usage() if exc.status is not None else None
        return 502, _error(f"Upstream: {exc.message}", "upstream_error"), used
    return 200, payload, completion.usage if completion.usage.total_tokens else None


class BudgetProxy(_LocalServer):
    """An OpenAI-compatible endpoint on 127.0.0.1 (or `unix_socket`) that forwards to `upstream` within `budget`.

    The caller authenticates with `token` (made here; never the upstream key). The proxy sets the
    model, caps `max_tokens` to what the budget allows, refuses streaming, and counts usage.
    """

    def __init__(
        self,
        upstream: ChatClient,
        budget: Budget,
        *,
        token: str | None = None,
        max_completion_tokens: int = 0,
        unix_socket: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(unix_socket=unix_socket)
        self.upstream = upstream
        self.budget = budget
        self.token = token or f"proxy-{secrets.token_urlsafe(24)}"
        self.max_completion_tokens = max_completion_tokens or DEFAULT_MAX_COMPLETION_TOKENS
        self.upstream_errors = 0

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the scorer's output is its result."""

            def _authorised(self) -> bool:
                supplied = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                if secrets.compare_digest(supplied.encode(), proxy.token.encode()):
                    return True
                _send_json(self, 401, _error("Wrong or missing API key for the budget proxy.", "invalid_api_key"))
                return False

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                if self.path.rstrip("/").endswith("/models"):
                    model = {"id": proxy.upstream.model, "object": "model", "owned_by": "budget-proxy"}
                    _send_json(self, 200, {"object": "list", "data": [model]})
                elif self.path.rstrip("/").endswith("/budget"):
                    _send_json(self, 200, proxy.budget.summary())
                else:
                    _send_json(self, 404, _error(f"No such path {self.path}.", "not_found"))

            def do_POST(self) -> None:
                if not self._authorised():
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    _send_json(self, 404, _error(f"No such path {self.path}: use /v1/chat/completions.", "not_found"))
                    return
                body, problem = _read_json_body(self)
                if body is None:
                    _send_json(self, 400, _error(problem, "invalid_request_error"))
                    return
                status, payload = proxy.forward(body)
                _send_json(self, status, payload, {"X-Budget-Spent-Tokens": str(proxy.budget.spent_tokens)})

        return Handler

    def forward(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Check, reserve, forward, settle: the HTTP status and JSON answer for one request."""
        try:
            messages, n, cap = checked_request(body, self.max_completion_tokens)
        except InvalidRequest as exc:
            return 400, _error(str(exc), "invalid_request_error")
        try:
            reservation = self.budget.reserve(prompt_token_bound(messages), cap, n)
        except BudgetExceeded as exc:
            return 429, _error(str(exc), "budget_exceeded")
        status, payload, used = forward_reserved(self.upstream, body, reservation.per_choice)
        if status != 200:
            self.upstream_errors += 1
        self.budget.settle(reservation, used)
        return status, payload
