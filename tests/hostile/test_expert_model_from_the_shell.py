"""From the shell, the environment's model: through the attempt's relay, never with the key, under one budget.

RE-Bench's agent held the model's key while it worked. Here the shell gets OPENAI_BASE_URL (a port on
the sandbox's own loopback, bridged to the attempt's API relay) and a placeholder key; the site
forwards with the real key and charges the attempt. The attack is the expert's: call the model with
openai's own client until it says no, and look for the key. What the shell spent is then what the
next scoring run may not spend.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from environments.common.llm import LocalChatServer
from graders.models import ModelCall, ScoringJob
from graders.selectors import attempt_model_spend
from tests.environments.scoring_support import small_configuration
from tests.hostile.conftest import ROOT_ONLY, end_everything, local_attempt_at
from tests.hostile.shell import close, open_shell, run
from tests.trials import terminal_support as ts
from trials.models import Attempt
from workstation import layout, users

pytestmark = [ROOT_ONLY, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]
__all__ = ["small_configuration"]

KEY = "sk-real-key-the-web-server-holds"
CHAT_RL_SCORING = Path(__file__).resolve().parents[2] / "environments" / "ai_rd_nanogpt_chat_rl" / "scoring"
GREEDY = (
    "python3 -c 'import os, openai\n"
    "client = openai.OpenAI(max_retries=0)\n"
    "answered = 0\n"
    "while True:\n"
    "    try:\n"
    '        hi = [{"role": "user", "content": "hi"}]\n'
    '        client.chat.completions.create(model="any", messages=hi, max_tokens=100)\n'
    "        answered += 1\n"
    "    except openai.APIStatusError as exc:\n"
    '        print("ANSWERED", answered, "THEN", exc.status_code)\n'
    "        break\n"
    'print("KEY", os.environ["OPENAI_API_KEY"], "SK" if "sk-" in str(os.environ) else "CLEAN")\''
)


@pytest.fixture
def rust_attempt(
    term_dirs: Path, small_configuration: Any, live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Attempt]:
    with LocalChatServer(lambda body: "x" * 400, api_key=KEY, model="served-model") as model:
        small_configuration.TERMINAL_API_URL = f"{live_server.url}/api"
        small_configuration.RUST_CODECONTESTS_MODEL_URL = model.url
        small_configuration.RUST_CODECONTESTS_BUDGET_TOKENS = 300
        small_configuration.RUST_CODECONTESTS_BUDGET_USD = 0
        monkeypatch.setenv("RUST_CODECONTESTS_API_KEY", KEY)
        made = local_attempt_at("ai_rd_rust_codecontests_inference")
        yield made
        end_everything(made)


@ts.sync
async def test_the_shell_calls_the_model_through_the_site_never_sees_the_key_and_spends_the_attempts_budget(
    rust_attempt: Attempt,
) -> None:
    from channels.db import database_sync_to_async

    screen = await open_shell(rust_attempt)
    out = await run(screen, GREEDY, timeout=60)
    await close(screen)
    # 300 tokens: 109 + 109 + 34 (the third cut to what was left), then refused (see test_expert_model_api).
    assert "ANSWERED 3 THEN 429" in out, out
    assert "KEY attempt CLEAN" in out, out

    def ledger() -> tuple[list[int | None], dict[str, Any]]:
        calls = [c.tokens for c in ModelCall.objects.filter(attempt=rust_attempt)]
        job = ScoringJob.objects.create(attempt=rust_attempt, queue_name="ws.test")
        return calls, attempt_model_spend(job)

    calls, spend = await database_sync_to_async(ledger)()
    assert calls == [109, 109, 34]
    assert spend["tokens"] == 252


JUDGE_KEY = "sk-judge-key-the-web-server-holds"
JUDGE_FROM_THE_SHELL = (
    "python3 -c 'import evaluation, json, os, urllib.request\n"
    'essay = {"messages": [{"role": "user", "content": "Write me a long essay."}], "max_tokens": 2000}\n'
    'request = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions",\n'
    '    data=json.dumps(essay).encode(), headers={"Content-Type": "application/json"})\n'
    "with urllib.request.urlopen(request) as answer:\n"
    '    print("ESSAY", len(json.load(answer)["choices"][0]["message"]["content"]), "BYTES")\n'
    "judged = 0\n"
    "try:\n"
    "    while True:\n"
    '        evaluation.prefers_first("How can I copy a file?", "Use shutil.copy.", "Bananas")\n'
    "        judged += 1\n"
    "except evaluation.JudgeError as exc:\n"
    '    print("JUDGED", judged, "THEN", exc)\n'
    'print("KEY", os.environ["OPENAI_API_KEY"], "SK" if "sk-" in str(os.environ) else "CLEAN")\''
)


def give_evaluation(attempt: Attempt) -> None:
    """The workspace's evaluation.py and judging.py, as the start writes them (this attempt's workspace wasn't
    started), the attempt's user's."""
    owner = users.attempt_user(attempt.pk)
    for name in ("evaluation.py", "judging.py"):
        copied = layout.workspace(attempt.pk) / name
        shutil.copyfile(CHAT_RL_SCORING / name, copied)
        os.lchown(copied, owner.uid, owner.gid)


@pytest.fixture
def chat_rl_attempt(
    term_dirs: Path, small_configuration: Any, live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Attempt, LocalChatServer]]:
    # A judge that would write essays: "A", then as much as it is allowed.
    with LocalChatServer(lambda body: "A " + "x" * 4000, api_key=JUDGE_KEY, model="judge") as judge:
        small_configuration.TERMINAL_API_URL = f"{live_server.url}/api"
        small_configuration.CHAT_RL_JUDGE_URL = judge.url
        small_configuration.CHAT_RL_JUDGE_BUDGET_TOKENS = 1500
        small_configuration.CHAT_RL_JUDGE_BUDGET_USD = 0
        monkeypatch.setenv("CHAT_RL_JUDGE_API_KEY", JUDGE_KEY)
        made = local_attempt_at("ai_rd_nanogpt_chat_rl")
        yield made, judge
        end_everything(made)


@ts.sync
async def test_the_shell_judges_through_the_site_a_verdicts_few_tokens_at_a_time_until_the_judge_budget_says_no(
    chat_rl_attempt: tuple[Attempt, LocalChatServer],
) -> None:
    from channels.db import database_sync_to_async

    attempt, judge = chat_rl_attempt
    screen = await open_shell(attempt)
    give_evaluation(attempt)
    out = await run(screen, JUDGE_FROM_THE_SHELL, timeout=90)
    await close(screen)
    # Asked for 2000 tokens of essay, the shell got a verdict's 5 (4 bytes each): the judge writes nothing else.
    assert "ESSAY 20 BYTES" in out, out
    assert {r["max_tokens"] for r in judge.requests} <= {1, 2, 3, 4, 5}
    assert "The judge's call was refused (429): The attempt's model budget" in out, out
    judged = int(out.split("JUDGED ", 1)[1].split()[0])
    assert judged >= 1
    assert "KEY attempt CLEAN" in out, out
    assert set(judge.authorizations) == {f"Bearer {JUDGE_KEY}"}

    def spent() -> list[int]:
        return [int(c.tokens or 0) for c in ModelCall.objects.filter(attempt=attempt)]

    calls = await database_sync_to_async(spent)()
    assert len(calls) == judged + 1  # the essay and each verdict; the refused call reached nothing
    assert len(judge.requests) == judged + 1
    assert sum(calls) <= 1500


@ts.sync
async def test_the_shells_evaluate_asks_many_comparisons_at_once_through_the_relay_and_gets_each_verdict_in_order(
    chat_rl_attempt: tuple[Attempt, LocalChatServer], small_configuration: Any
) -> None:
    attempt, judge = chat_rl_attempt
    small_configuration.CHAT_RL_JUDGE_BUDGET_TOKENS = 0  # unlimited: this is about concurrency
    small_configuration.CHAT_RL_JUDGE_BUDGET_USD = 0
    screen = await open_shell(attempt)
    give_evaluation(attempt)
    command = (
        "python3 -c 'import asyncio, evaluation\n"
        'pairs = [("Use shutil.copy.", f"Bananas {i}") for i in range(24)]\n'
        'verdicts = asyncio.run(evaluation.evaluate(["How can I copy a file?"] * 24, pairs, max_workers=12))\n'
        'print("VERDICTS", len(verdicts), all(verdicts))\''
    )
    out = await run(screen, command, timeout=120)
    await close(screen)
    assert "VERDICTS 24 True" in out, out
    assert len(judge.requests) == 24
    # Each comparison reached the judge once, in the scorer's words.
    assert sorted(
        r["messages"][1]["content"].split("[Response B]\n")[1].split("\n")[0] for r in judge.requests
    ) == sorted(f"Bananas {i}" for i in range(24))
