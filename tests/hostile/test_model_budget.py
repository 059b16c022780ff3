"""The Rust scaffolding's model budget is the attempt's, as RE-Bench's credit is: scoring again buys no more.

Before, each scoring run got the whole budget afresh: an expert whose module spends all it is given
could press Score again and again and have the model called for as many times the budget as runs.
The attack below is the expert's: a module that calls the model until the proxy refuses, scored
twice; the model must have been paid for no more than the one budget, all runs together.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from graders import services
from graders.models import ScoreLogEntry, ScoringJob
from tests.environments.scoring_support import load_module, small_configuration
from tests.graders.conftest import attempt_on, grading_dirs
from tests.hostile.conftest import ROOT_ONLY
from tests.workspace_support import put
from trials.models import Attempt
from workstation import layout

pytestmark = [ROOT_ONLY, pytest.mark.django_db(transaction=True), pytest.mark.timeout(400)]
__all__ = ["attempt_on", "grading_dirs", "small_configuration"]

RUST = "ai_rd_rust_codecontests_inference"
RUST_PACKAGE = Path(settings.BASE_DIR) / "environments" / RUST
API_KEY = "sk-real-key-only-the-scorer-holds"
BUDGET = 3_000

# Calls the model until the budget proxy says no, for every problem at once.
GREEDY = """
import openai

async def generate_solution(client, semaphore, problem):
    client = client.with_options(max_retries=0)
    while True:
        try:
            async with semaphore:
                await client.chat.completions.create(
                    model="any", messages=[{"role": "user", "content": problem["name"]}], max_tokens=400
                )
        except openai.APIStatusError:
            return "fn main() {}"
"""


def scored(attempt: Attempt) -> ScoreLogEntry:
    """One scoring run the expert asked for, as the worker runs and records it."""
    job = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test", kind=ScoringJob.Kind.INTERMEDIATE)
    outcome, status = services.scoring_job_execute(job=job)
    entry = services.scoring_job_finish(job_id=str(job.pk), outcome=outcome, status=status)
    assert entry is not None
    return entry


def test_scoring_again_gives_a_greedy_module_no_more_than_the_attempts_one_budget(
    attempt_on: Callable[..., Attempt], small_configuration: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted = load_module("rust_scripted_model", RUST_PACKAGE / "scripted_model" / "serve.py")
    with scripted.server(api_key=API_KEY) as model:
        small_configuration.RUST_CODECONTESTS_MODEL_URL = model.url
        small_configuration.RUST_CODECONTESTS_MODEL = "scripted-rust-model"
        small_configuration.RUST_CODECONTESTS_BUDGET_TOKENS = BUDGET
        small_configuration.RUST_CODECONTESTS_RUSTC = ""
        monkeypatch.setenv("RUST_CODECONTESTS_API_KEY", API_KEY)
        attempt = attempt_on(RUST)
        services.workspace_prepare(attempt=attempt)
        put(layout.workspace(attempt.pk), "solve_code_contests_rust.py", GREEDY)

        first = scored(attempt)
        spent_first = first.details["attempt_spend"]["tokens"]
        assert first.details["budget"]["refused"] >= 1, first.message  # it did ask until it was told no
        assert 0 < spent_first <= BUDGET
        calls_first = len(model.requests)

        second = scored(attempt)
        # The second run was given what the first left, not the whole budget again.
        assert second.details["attempt_spent_before"]["tokens"] == spent_first
        assert second.details["budget"]["max_tokens"] == BUDGET - spent_first
        spent_second = second.details["attempt_spend"]["tokens"]
        # Paid as the model reported its usage (the proxy settles on it), all runs together: one budget.
        assert spent_first + spent_second <= BUDGET, (spent_first, spent_second)
        # The first run asked until even its smallest request no longer fitted (one request at a time:
        # the small configuration's semaphore is 1); the same requests don't fit in what it left.
        assert spent_second == 0
        assert len(model.requests) == calls_first
