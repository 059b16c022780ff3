"""OpenAI-compatible chat endpoints: a client, a spending budget, a budget-enforcing proxy and a local server.

Standard library only: the module is imported by the site (`environments.common.llm`) and, copied
beside a scorer (`common/llm.py`), by scorers that run an expert's code against a model.

The budget proxy is how a scaffold gets a model without getting the key or an open tab: the scorer
holds the real key, starts a `BudgetProxy` and gives the scaffold only the proxy's address and a
one-run token. The proxy forces the configured model, reserves each request's worst-case cost
before forwarding it (so concurrent requests can't overshoot) and refuses with HTTP 429 what would
not fit. It listens on 127.0.0.1, or on a Unix socket (`unix_socket=`): a scorer's harness bridges
the sandboxed scaffold's 127.0.0.1:PORT to that socket, so the scaffold needs no network at all.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import socketserver
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
MAX_REQUEST_BYTES = 2 * 1024 * 1024
# A byte-level BPE token covers at least one byte of text; chat templates add a few tokens per
# message. So bytes + these overheads bound the prompt's tokens from above, for any such tokenizer.
TOKENS_PER_MESSAGE = 8
TOKENS_PER_REQUEST = 16
DEFAULT_MAX_COMPLETION_TOKENS = 4096


class EndpointError(Exception):
    """The endpoint could not be used: unreachable, too slow, refused, or answered something that isn't a completion."""

    def __init__(self, message: str, *, status: int | None = None, timeout: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.timeout = timeout


class BudgetExceeded(Exception):
    """A request would not fit in what is left of the budget."""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Completion:
    texts: list[str]
    usage: Usage
    model: str = ""

    @property
    def text(self) -> str:
        return self.texts[0]


def _short(raw: bytes | str, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def parse_completion(payload: Any) -> Completion:
    """A chat-completions answer as a Completion; anything else is an EndpointError saying what is wrong."""
    if not isinstance(payload, dict):
        raise EndpointError(f"The endpoint answered a JSON {type(payload).__name__}, not a chat completion object.")
    if isinstance(payload.get("error"), dict | str):
        error = payload["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise EndpointError(f"The endpoint answered an error: {_short(str(message))}")
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices:
        raise EndpointError("The endpoint's answer has no choices.")
    texts = []
    for index, choice in enumerate(choices):
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise EndpointError(f"The endpoint's answer has no text in choices[{index}].message.content.")
        texts.append(content)
    usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
    return Completion(
        texts=texts,
        usage=Usage(_count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))),
        model=str(payload.get("model", "")),
    )


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return 0
    return int(value)


class ChatClient:
    """Calls `<base_url>/chat/completions`; every failure is an EndpointError with a message a person can act on."""

    def __init__(self, base_url: str, *, api_key: str = "", model: str = "", timeout: float = 60.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise EndpointError(f"The endpoint URL must start with http:// or https://, got {base_url!r}.")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.model = model
        self.timeout = timeout

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST a chat-completions request as it is; the decoded JSON object answered."""
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            f"{self.base_url}/chat/completions", data=data, headers=headers, method="POST"
        )
        where = f"The endpoint {self.base_url}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - checked scheme
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            detail = _short(exc.read(4096) or b"")
            raise EndpointError(f"{where} refused the request (HTTP {exc.code}): {detail}", status=exc.code) from exc
        except TimeoutError as exc:
            raise EndpointError(f"{where} did not answer within {self.timeout:g} s.", timeout=True) from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise EndpointError(f"{where} did not answer within {self.timeout:g} s.", timeout=True) from exc
            raise EndpointError(f"{where} can't be reached: {exc.reason}.") from exc
        except (ConnectionError, OSError) as exc:
            raise EndpointError(f"{where} broke the connection: {exc}.") from exc
        if len(raw) > MAX_RESPONSE_BYTES:
            raise EndpointError(f"{where} answered more than {MAX_RESPONSE_BYTES} bytes.")
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            raise EndpointError(f"{where} answered something that is not JSON: {_short(raw) or '(empty)'}") from exc
        if not isinstance(payload, dict):
            raise EndpointError(f"{where} answered a JSON {type(payload).__name__}, not a chat completion object.")
        return payload

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        n: int = 1,
        **extra: Any,
    ) -> Completion:
        body: dict[str, Any] = {"model": self.model, "messages": messages, **extra}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        if n != 1:
            body["n"] = n
        return parse_completion(self.post(body))


# --- the budget ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prices:
    """Cost per million tokens; zero prices make the cost budget count nothing."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1e6


@dataclass
class Reservation:
    prompt_tokens: int
    completion_tokens: int
    cost: float
    per_choice: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Budget:
    """Tokens and/or money a run may spend; None means that kind is not limited.

    Every request first reserves its worst case; settling replaces the reservation with what the
    endpoint reports it used. So the spend never passes the limit as long as the endpoint's counts
    stay within the worst case (which `prompt_token_bound` makes true for byte-level tokenizers).
    """

    max_tokens: int | None = None
    max_cost: float | None = None
    prices: Prices = field(default_factory=Prices)
    spent_tokens: int = 0
    spent_cost: float = 0.0
    requests: int = 0
    refused: int = 0
    _reserved_tokens: int = 0
    _reserved_cost: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def completion_allowance(self, prompt_tokens: int, n: int = 1) -> int | None:
        """The most completion tokens per choice a request may ask for now; None when unlimited."""
        n = max(n, 1)
        limits = []
        if self.max_tokens is not None:
            limits.append((self.max_tokens - self.spent_tokens - self._reserved_tokens - prompt_tokens) // n)
        if self.max_cost is not None:
            left = self.max_cost - self.spent_cost - self._reserved_cost - self.prices.cost(prompt_tokens, 0)
            if left < 0:
                limits.append(-1)
            elif self.prices.output_per_mtok > 0:
                limits.append(math.floor(left * 1e6 / self.prices.output_per_mtok) // n)
        return min(limits) if limits else None

    def reserve(self, prompt_tokens: int, max_completion_tokens: int, n: int = 1) -> Reservation:
        """Hold the worst case of one request, its completion cut to what is left; BudgetExceeded if nothing is."""
        n = max(n, 1)
        with self._lock:
            allowance = self.completion_allowance(prompt_tokens, n)
            per_choice = max_completion_tokens if allowance is None else min(max_completion_tokens, allowance)
            if per_choice < 1:
                self.refused += 1
                raise BudgetExceeded(self._refusal(prompt_tokens, max_completion_tokens * n))
            completion = per_choice * n
            reservation = Reservation(
                prompt_tokens, completion, self.prices.cost(prompt_tokens, completion), per_choice
            )
            self._reserved_tokens += reservation.tokens
            self._reserved_cost += reservation.cost
            self.requests += 1
            return reservation

    def settle(self, reservation: Reservation, usage: Usage | None) -> None:
        """Replace the reservation with what was used; unknown usage (None) is charged at the worst case."""
        with self._lock:
            self._reserved_tokens -= reservation.tokens
            self._reserved_cost -= reservation.cost
            if usage is None:
                self.spent_tokens += reservation.tokens
                self.spent_cost += reservation.cost
            else:
                self.spent_tokens += usage.total_tokens
                self.spent_cost += self.prices.cost(usage.prompt_tokens, usage.completion_tokens)

    def release(self, reservation: Reservation) -> None:
        """The request was never answered and cost nothing (the endpoint refused it)."""
        self.settle(reservation, Usage())

    def _refusal(self, prompt_tokens: int, completion_tokens: int) -> str:
        parts = []
        if self.max_tokens is not None:
            parts.append(f"{self.spent_tokens} of {self.max_tokens} tokens spent")
        if self.max_cost is not None:
            parts.append(f"{self.spent_cost:.4f} of {self.max_cost:g} spent")
        return (
            f"Budget exhausted: this request needs up to {prompt_tokens} prompt + {completion_tokens} completion "
            f"tokens and only what is left may be spent ({'; '.join(parts)})."
        )

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "spent_tokens": self.spent_tokens,
                "max_tokens": self.max_tokens,
                "spent_cost": round(self.spent_cost, 6),
                "max_cost": self.max_cost,
                "requests": self.requests,
                "refused": self.refused,
            }


def prompt_token_bound(messages: Any) -> int:
    """An upper bound on the prompt's tokens: its bytes plus template overheads (see TOKENS_PER_MESSAGE)."""
    total = TOKENS_PER_REQUEST
    for message in messages if isinstance(messages, list) else [messages]:
        total += TOKENS_PER_MESSAGE + len(json.dumps(message, ensure_ascii=False).encode())
    return total


# --- local servers ---------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (its own timeout) is not our error; anything else is printed as usual.
        if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            super().handle_error(request, client_address)


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The same HTTP handlers on a Unix socket (no host/port: BaseHTTPRequestHandler needs neither)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            super().handle_error(request, client_address)


class _LocalServer:
    """A threading HTTP server on 127.0.0.1 (a free port) or on a Unix socket, run in a thread; a context manager."""

    def __init__(self, port: int = 0, *, unix_socket: str | os.PathLike[str] | None = None) -> None:
        self._port = port
        self._unix_socket = os.fspath(unix_socket) if unix_socket is not None else None
        self._server: _Server | _UnixServer | None = None
        self._thread: threading.Thread | None = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> _LocalServer:
        if self._unix_socket is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._unix_socket)  # a socket left by an earlier run
            self._server = _UnixServer(self._unix_socket, self._handler())
            # Its owner only: on the workstation the harness connects as the same user.
            os.chmod(self._unix_socket, 0o600)
        else:
            self._server = _Server(("127.0.0.1", self._port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            if self._unix_socket is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._unix_socket)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        assert self._unix_socket is None, "a Unix-socket server has no port"
        return self._server.server_address[1]  # type: ignore[index]

    @property
    def socket_path(self) -> str | None:
        """The Unix socket it listens on (None on TCP)."""
        return self._unix_socket

    @property
    def url(self) -> str:
        """The base URL clients use, OpenAI style (`…/v1`)."""
        return f"http://127.0.0.1:{self.port}/v1"


def _read_json_body(handler: BaseHTTPRequestHandler) -> tuple[dict[str, Any] | None, str]:
    try:
        length = int(handler.headers.get("Content-Length") or 0)
    except ValueError:
        return None, "Content-Length is not a number."
    if length <= 0:
        return None, "The request has no body."
    if length > MAX_REQUEST_BYTES:
        return None, f"The request is larger than {MAX_REQUEST_BYTES} bytes."
    try:
        body = json.loads(handler.rfile.read(length))
    except ValueError:
        return None, "The request body is not JSON."
    if not isinstance(body, dict):
        return None, "The request body must be a JSON object."
    return body, ""


def _send_json(
    handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind}}


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
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return 400, _error("messages must be a non-empty list.", "invalid_request_error")
        if body.get("stream"):
            return 400, _error("Streaming is not supported by the budget proxy.", "invalid_request_error")
        n = body.get("n", 1)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 16:
            return 400, _error("n must be an integer from 1 to 16.", "invalid_request_error")
        requested = body.get("max_completion_tokens", body.get("max_tokens"))
        if requested is not None and (isinstance(requested, bool) or not isinstance(requested, int) or requested < 1):
            return 400, _error("max_tokens must be a positive integer.", "invalid_request_error")
        cap = min(self.max_completion_tokens, requested or self.max_completion_tokens)
        try:
            reservation = self.budget.reserve(prompt_token_bound(messages), cap, n)
        except BudgetExceeded as exc:
            return 429, _error(str(exc), "budget_exceeded")
        forwarded = {k: v for k, v in body.items() if k not in ("max_completion_tokens", "model")}
        forwarded.update(model=self.upstream.model, max_tokens=reservation.per_choice)
        try:
            payload = self.upstream.post(forwarded)
            completion = parse_completion(payload)
        except EndpointError as exc:
            self.upstream_errors += 1
            if exc.status is not None:
                self.budget.release(reservation)  # refused upstream: nothing was generated
            else:
                self.budget.settle(reservation, None)  # it may have run: count the worst case
            return 502, _error(f"Upstream: {exc.message}", "upstream_error")
        reported = completion.usage if completion.usage.total_tokens else None
        self.budget.settle(reservation, reported)
        return 200, payload


Responder = Callable[[dict[str, Any]], Any]


class LocalChatServer(_LocalServer):
    """An OpenAI-compatible chat endpoint on 127.0.0.1 whose answers a Python function decides.

    `respond(request_body)` returns a string (one choice), a list of strings (n choices), or a
    `RawAnswer` (status and bytes as they are: for garbage, errors and stalls). Usage is reported
    as bytes / 4, roughly what BPE tokenizers give English, and answers stop at `max_tokens` as a
    real endpoint's do. Every request is kept in `requests`.
    """

    def __init__(self, respond: Responder, *, api_key: str = "", model: str = "local-scripted", port: int = 0) -> None:
        super().__init__(port)
        self.respond = respond
        self.api_key = api_key
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        self._lock = threading.Lock()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                authorization = self.headers.get("Authorization", "")
                with server._lock:
                    server.authorizations.append(authorization)
                if server.api_key and authorization != f"Bearer {server.api_key}":
                    _send_json(self, 401, _error("Incorrect API key provided.", "invalid_api_key"))
                    return
                body, problem = _read_json_body(self)
                if body is None:
                    _send_json(self, 400, _error(problem, "invalid_request_error"))
                    return
                with server._lock:
                    server.requests.append(body)
                answer = server.respond(body)
                if isinstance(answer, RawAnswer):
                    if answer.delay:
                        time.sleep(answer.delay)
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                    return
                _send_json(self, 200, server.completion(body, answer))

        return Handler

    def completion(self, body: dict[str, Any], answer: str | list[str]) -> dict[str, Any]:
        texts = [answer] if isinstance(answer, str) else list(answer)
        limit = body.get("max_tokens")
        if isinstance(limit, int) and limit > 0:
            # As a real endpoint stops at max_tokens (here 4 bytes a token).
            texts = [t.encode()[: 4 * limit].decode("utf-8", "ignore") for t in texts]
        prompt = sum(len(json.dumps(m).encode()) for m in body.get("messages", [])) // 4 + 1
        completion = sum(math.ceil(len(t.encode()) / 4) for t in texts)
        return {
            "id": f"chatcmpl-{secrets.token_hex(8)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                for i, t in enumerate(texts)
            ],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }


@dataclass(frozen=True)
class RawAnswer:
    """An answer sent as it is, optionally after a delay: how tests make an endpoint misbehave."""

    body: bytes
    status: int = 200
    delay: float = 0.0


def serve_from_command_line(
    make_server: Callable[..., LocalChatServer], *, description: str, name: str, default_port: int
) -> None:
    """`python serve.py [--port N] [--api-key K]`: run a package's local endpoint until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--api-key", default="", help="refuse requests without this bearer key")
    args = parser.parse_args()
    with make_server(api_key=args.api_key, port=args.port) as running:
        print(f"{name} at {running.url} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
