"""From the shell, the environment's model: through the attempt's relay, never with the key, under one budget.

RE-Bench's agent held the model's key while it worked. Here the shell gets OPENAI_BASE_URL (a port on
the sandbox's own loopback, bridged to the attempt's API relay) and a placeholder key; the site
forwards with the real key and charges the attempt. The attack is the expert's: call the model with
openai's own client until it says no, and look for the key. What the shell spent is then what the
next scoring run may not spend.
"""

from __future__ import annotations

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

pytestmark = [ROOT_ONLY, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]
__all__ = ["small_configuration"]

KEY = "sk-real-key-the-web-server-holds"
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
