"""The OpenAI-compatible client, the spending budget and the budget proxy, against real servers on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from environments.common.llm import (
    Budget,
    BudgetExceeded,
    BudgetProxy,
    ChatClient,
    EndpointError,
    LocalChatServer,
    Prices,
    RawAnswer,
    Usage,
    prompt_token_bound,
)

HELLO = [{"role": "user", "content": "Say hello."}]
SPAWNER = Path(__file__).resolve().parents[2] / "workstation" / "sandbox" / "spawner.py"


def post(url: str, body: Any, token: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL made by the test
        f"{url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - as above
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_client_reads_every_choice_and_the_usage_of_an_answer() -> None:
    with LocalChatServer(lambda body: ["hello", "hi"], api_key="k") as server:
        completion = ChatClient(server.url, api_key="k", model="m").complete(HELLO, n=2, temperature=0.5)
    assert completion.texts == ["hello", "hi"]
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens > 0
    assert server.requests[0]["model"] == "m"
    assert server.requests[0]["n"] == 2


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (RawAnswer(b"<html>Bad Gateway</html>"), "not JSON: <html>Bad Gateway</html>"),
        (RawAnswer(b""), "not JSON: (empty)"),
        (RawAnswer(b"[1, 2]"), "a JSON list, not a chat completion"),
        (RawAnswer(b'{"choices": []}'), "has no choices"),
        (RawAnswer(b'{"choices": [{"message": {"content": 7}}]}'), "no text in choices[0].message.content"),
        (RawAnswer(b'{"error": {"message": "overloaded"}}', status=503), "refused the request (HTTP 503)"),
        (RawAnswer(b'{"error": {"message": "quota"}}'), "answered an error: quota"),
    ],
    ids=["html", "empty", "list", "no-choices", "no-text", "http-503", "error-object"],
)
def test_garbage_from_the_endpoint_is_an_error_that_says_what_was_wrong(answer: RawAnswer, expected: str) -> None:
    with LocalChatServer(lambda body: answer) as server, pytest.raises(EndpointError) as caught:
        ChatClient(server.url).complete(HELLO)
    assert expected in caught.value.message


def test_an_endpoint_that_does_not_answer_in_time_is_a_timeout_error() -> None:
    with LocalChatServer(lambda body: RawAnswer(b"{}", delay=2.0)) as server, pytest.raises(EndpointError) as caught:
        ChatClient(server.url, timeout=0.3).complete(HELLO)
    assert caught.value.timeout
    assert "did not answer within 0.3 s" in caught.value.message


def test_an_unreachable_endpoint_and_a_bad_url_are_clear_errors() -> None:
    with LocalChatServer(lambda body: "x") as server:
        url = server.url
    with pytest.raises(EndpointError, match="can't be reached"):
        ChatClient(url, timeout=2).complete(HELLO)
    with pytest.raises(EndpointError, match="must start with http"):
        ChatClient("ftp://example.org")


def test_the_proxy_forwards_with_the_real_key_and_the_configured_model_and_the_caller_never_needs_the_key() -> None:
    with LocalChatServer(lambda body: "answer", api_key="real-secret", model="upstream-model") as upstream:
        budget = Budget(max_tokens=100_000)
        with BudgetProxy(ChatClient(upstream.url, api_key="real-secret", model="gpt-x"), budget) as proxy:
            assert "real-secret" not in proxy.token
            status, body = post(proxy.url, {"model": "something-pricier", "messages": HELLO}, proxy.token)
            refused, error = post(proxy.url, {"messages": HELLO}, "real-secret")
    assert status == 200
    assert body["choices"][0]["message"]["content"] == "answer"
    assert upstream.authorizations == ["Bearer real-secret"]  # the refused call never reached upstream
    assert upstream.requests[0]["model"] == "gpt-x"
    assert refused == 401
    assert "Wrong or missing API key" in error["error"]["message"]
    assert budget.spent_tokens == body["usage"]["total_tokens"]


def test_the_proxy_cuts_max_tokens_to_what_is_left_and_refuses_once_nothing_is() -> None:
    with LocalChatServer(lambda body: "ok") as upstream:
        budget = Budget(max_tokens=400)
        with BudgetProxy(ChatClient(upstream.url, model="m"), budget) as proxy:
            status, _ = post(proxy.url, {"messages": HELLO, "max_tokens": 10_000}, proxy.token)
            assert status == 200
            # Asked for 10 000, given only what the budget could still pay for after the prompt's bound.
            assert upstream.requests[0]["max_tokens"] == 400 - prompt_token_bound(HELLO)
            statuses = [post(proxy.url, {"messages": HELLO}, proxy.token)[0] for _ in range(40)]
            _, refusal = post(proxy.url, {"messages": HELLO}, proxy.token)
    assert 429 in statuses
    assert "Budget exhausted" in refusal["error"]["message"]
    assert budget.spent_tokens <= 400
    assert budget.refused >= 1


def test_concurrent_requests_never_spend_more_than_the_budget() -> None:
    # Each answer is long, so a request costs much more than its prompt: overlapping requests would
    # overshoot a budget that only counted after the fact.
    with LocalChatServer(lambda body: "word " * 200) as upstream:
        budget = Budget(max_tokens=3_000)
        with BudgetProxy(ChatClient(upstream.url, model="m"), budget, max_completion_tokens=300) as proxy:
            statuses: list[int] = []

            def hammer() -> None:
                for _ in range(6):
                    statuses.append(post(proxy.url, {"messages": HELLO}, proxy.token)[0])

            threads = [threading.Thread(target=hammer) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    assert statuses.count(200) >= 5
    assert 429 in statuses
    assert budget.spent_tokens <= 3_000
    assert budget.summary()["requests"] == statuses.count(200) + statuses.count(502)


def test_a_cost_budget_counts_money_at_the_configured_prices() -> None:
    budget = Budget(max_cost=0.01, prices=Prices(input_per_mtok=1000.0, output_per_mtok=2000.0))
    reservation = budget.reserve(2, 100)
    # The prompt costs 0.002; the 0.008 left buys 4 completion tokens at 0.002 each, not 100.
    assert reservation.per_choice == 4
    assert reservation.cost == pytest.approx(0.01)
    budget.settle(reservation, Usage(prompt_tokens=2, completion_tokens=3))
    assert budget.spent_cost == pytest.approx(0.008)
    with pytest.raises(BudgetExceeded, match=r"0\.0080 of 0\.01 spent"):
        budget.reserve(2, 100)


def test_answers_without_usage_are_charged_at_the_worst_case() -> None:
    no_usage = json.dumps({"choices": [{"message": {"role": "assistant", "content": "hi"}}]}).encode()
    with LocalChatServer(lambda body: RawAnswer(no_usage)) as upstream:
        budget = Budget(max_tokens=10_000)
        with BudgetProxy(ChatClient(upstream.url, model="m"), budget, max_completion_tokens=50) as proxy:
            status, _ = post(proxy.url, {"messages": HELLO}, proxy.token)
    assert status == 200
    assert budget.spent_tokens == prompt_token_bound(HELLO) + 50


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": []}, "messages must be a non-empty list"),
        ({"messages": HELLO, "stream": True}, "Streaming is not supported"),
        ({"messages": HELLO, "n": 100}, "n must be an integer from 1 to 16"),
        ({"messages": HELLO, "max_tokens": "lots"}, "max_tokens must be a positive integer"),
        ([1, 2, 3], "must be a JSON object"),
    ],
    ids=["no-messages", "stream", "n", "max-tokens", "not-an-object"],
)
def test_the_proxy_refuses_bad_requests_with_a_400_that_names_the_problem(body: Any, message: str) -> None:
    with LocalChatServer(lambda body: "x") as upstream:
        budget = Budget(max_tokens=10_000)
        with BudgetProxy(ChatClient(upstream.url, model="m"), budget) as proxy:
            status, answer = post(proxy.url, body, proxy.token)
    assert status == 400
    assert message in answer["error"]["message"]
    assert upstream.requests == []
    assert budget.spent_tokens == 0


def test_upstream_failures_reach_the_caller_as_502_and_a_refusal_costs_nothing() -> None:
    with LocalChatServer(lambda body: RawAnswer(b'{"error": "down"}', status=500)) as upstream:
        budget = Budget(max_tokens=10_000)
        with BudgetProxy(ChatClient(upstream.url, model="m"), budget) as proxy:
            status, answer = post(proxy.url, {"messages": HELLO}, proxy.token)
    assert status == 502
    assert "HTTP 500" in answer["error"]["message"]
    assert budget.spent_tokens == 0


def test_the_proxy_on_a_unix_socket_serves_what_a_harness_bridge_forwards_from_a_loopback_port(tmp_path: Path) -> None:
    """A scorer's proxy listens in its exchange folder; the harness's bridge (the spawner's `run
    --bridge PORT=SOCKET`) is the scaffold's only way to it: plain HTTP on 127.0.0.1:PORT."""
    socket_path = tmp_path / "llm.sock"
    with LocalChatServer(lambda body: "bridged", api_key="real-secret") as upstream:
        budget = Budget(max_tokens=10_000)
        client = ChatClient(upstream.url, api_key="real-secret", model="m")
        with BudgetProxy(client, budget, unix_socket=socket_path) as proxy:
            assert proxy.socket_path == str(socket_path)
            assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
            with pytest.raises(AssertionError, match="no port"):
                _ = proxy.url
            port = free_port()
            caller = (
                "import json, os, urllib.request\n"
                f"request = urllib.request.Request('http://127.0.0.1:{port}/v1/chat/completions', "
                f"data=json.dumps({{'messages': {HELLO!r}}}).encode(), "
                "headers={'Authorization': 'Bearer ' + os.environ['TOKEN'], 'Content-Type': 'application/json'})\n"
                "print(json.load(urllib.request.urlopen(request, timeout=10))['choices'][0]['message']['content'])\n"
            )
            bridge = [sys.executable, str(SPAWNER), "run", "--bridge", f"{port}={socket_path}", "--"]
            bridged = subprocess.run(
                [*bridge, sys.executable, "-c", caller],
                env={"TOKEN": proxy.token, "PATH": "/usr/bin:/bin"},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        assert not socket_path.exists()  # removed when the proxy stops
    assert bridged.returncode == 0, bridged.stderr
    assert bridged.stdout.strip() == "bridged"
    assert upstream.authorizations == ["Bearer real-secret"]
    assert budget.summary()["requests"] == 1
    assert budget.spent_tokens > 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
