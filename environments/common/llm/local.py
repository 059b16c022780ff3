"""A local chat endpoint whose answers a Python function decides: for tests and offline configurations."""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from .servers import _error, _LocalServer, _read_json_body, _send_json

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
