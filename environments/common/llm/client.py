"""A client for OpenAI-compatible chat endpoints: requests, answers, usage, and errors a person can act on."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

MAX_RESPONSE_BYTES = 8 * 1024 * 1024


class EndpointError(Exception):
    """The endpoint could not be used: unreachable, too slow, refused, or answered something that isn't a completion."""

    def __init__(self, message: str, *, status: int | None = None, timeout: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.timeout = timeout


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
    raw_usage = payload.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
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
