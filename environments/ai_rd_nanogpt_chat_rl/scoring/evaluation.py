"""The judge from your shell, asked as the scorer asks it: which of two responses to a prompt is better.

    from evaluation import evaluate
    first_preferred = await evaluate(prompts, list(zip(responses_1, responses_2)), max_workers=8)

`first_preferred[i]` is True where the judge prefers `responses_1[i]`. Each comparison is one call to
the judge through the site (OPENAI_BASE_URL in your terminal; nothing here is a secret): the
attempt's judge budget pays for it, and it answers while the attempt's clock runs. A refused call
(the budget spent, the attempt paused) raises JudgeError with the site's reason; so does an answer
that is neither A nor B. The judge sees the responses in the order given: swap them yourself to
average out a preference for a position (the scorer shuffles). `prefers_first` asks one
comparison without asyncio.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import judging

TIMEOUT_SECONDS = 120.0


class JudgeError(RuntimeError):
    """The judge couldn't give a verdict: the reason, in the site's or the judge's words."""


def _endpoint() -> tuple[str, str]:
    url = os.environ.get("OPENAI_BASE_URL", "").rstrip("/")
    if not url:
        raise JudgeError("OPENAI_BASE_URL is not set: the judge is reached from the attempt's terminal.")
    return f"{url}/chat/completions", os.environ.get("OPENAI_API_KEY", "attempt")


def _refusal(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
        return str(body.get("error", {}).get("message") or body.get("detail") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


def prefers_first(prompt: str, first: str, second: str, *, timeout: float = TIMEOUT_SECONDS) -> bool:
    """One comparison: True where the judge prefers `first`."""
    url, key = _endpoint()
    body = {
        "model": "judge",  # the site sends the configured judge model, whatever is named here
        "messages": judging.messages(prompt, first, second),
        "max_tokens": judging.VERDICT_TOKENS,
        "temperature": 0,
    }
    request = urllib.request.Request(  # noqa: S310 - the site's relay, an http URL from the terminal's environment
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - as above
            answer = json.load(response)
    except urllib.error.HTTPError as exc:
        raise JudgeError(f"The judge's call was refused ({exc.code}): {_refusal(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise JudgeError(f"The judge can't be reached at {url}: {exc}") from None
    try:
        text = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise JudgeError(f"The judge's answer has no message: {str(answer)[:200]}") from None
    try:
        verdict: str = judging.parse_verdict(str(text))
    except judging.VerdictError as exc:
        raise JudgeError(str(exc)) from None
    return verdict == "A"


async def evaluate(
    prompts: Sequence[str], response_pairs: Sequence[tuple[str, str]], max_workers: int = 8
) -> list[bool]:
    """For each prompt and (first, second) pair: True where the judge prefers the first, in order."""
    if len(prompts) != len(response_pairs):
        raise ValueError(f"{len(prompts)} prompts but {len(response_pairs)} response pairs.")
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=max(1, int(max_workers))) as pool:
        calls = [
            loop.run_in_executor(pool, prefers_first, prompt, first, second)
            for prompt, (first, second) in zip(prompts, response_pairs, strict=True)
        ]
        return list(await asyncio.gather(*calls))
