"""ai_rd_rust_codecontests_inference: the scorer end to end.

The model is the scripted OpenAI-compatible server (scripted_model/serve.py) started on 127.0.0.1
by each test, so the answers are known: the scorer, the budget proxy and the judge are under test.
Through the worker, the expert's module and the answers run in harness instances of the attempt's sandbox
and reach the model only over the bridge to the scorer's proxy; run in-process (`run_scorer`), the
harness is measure's unsandboxed stand-in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from environments import packages
from environments.common.llm import LocalChatServer
from environments.common.result import ATTEMPT_SPEND_ENV
from graders import services
from tests.environments.rust_codecontests_support import PACKAGE, SLUG, judge_rustc, scripted
from tests.environments.scoring_support import (
    copy_into,
    prepared_workspace,
    run_scorer,
    small_configuration,
    wait_for_entries,
    worker_for,
)
from tests.factories import preparing
from tests.workspace_support import put
from trials.models import Attempt
from workstation import layout

API_KEY = "sk-real-key-only-the-scorer-holds"

__all__ = ["small_configuration"]


@pytest.fixture
def model() -> Iterator[LocalChatServer]:
    """The scripted model, accepting only the real key: a request with any other key is refused."""
    with scripted.server(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def endpoint(small_configuration: Any, model: LocalChatServer, monkeypatch: pytest.MonkeyPatch) -> LocalChatServer:
    small_configuration.RUST_CODECONTESTS_MODEL_URL = model.url
    small_configuration.RUST_CODECONTESTS_MODEL = "scripted-rust-model"
    small_configuration.RUST_CODECONTESTS_BUDGET_TOKENS = 200_000
    small_configuration.RUST_CODECONTESTS_RUSTC = ""
    judge_rustc()  # the scorer's judge finds the same one
    # The worker's environment holds the key; the package hands it to the scorer alone.
    monkeypatch.setenv("RUST_CODECONTESTS_API_KEY", API_KEY)
    return model


SNOOP = """
import json, os

async def generate_solution(client, semaphore, problem):
    found = {"env": dict(os.environ)}
    found["self_cmdline"] = open("/proc/self/cmdline", "rb").read().decode("utf-8", "replace")
    for name in ("environ", "cmdline"):
        try:
            found["parent_" + name] = open(f"/proc/{os.getppid()}/{name}", "rb").read().decode("utf-8", "replace")
        except OSError as exc:
            found["parent_" + name] = f"refused: {exc}"
    try:
        scorer = [a for a in open(f"/proc/{os.getppid()}/cmdline", "rb").read().split(b"\\0") if a.endswith(b".py")][0]
        found["configuration"] = open(os.path.join(os.path.dirname(scorer.decode()), "configuration.json")).read()
    except (OSError, IndexError) as exc:
        found["configuration"] = f"refused: {exc}"
    with open("snooped.json", "w") as out:
        json.dump(found, out)
    return "fn main() {}"
"""


def scored(attempt: Attempt, count: int) -> Any:
    """The expert presses Score; a run of six problems (the module's instance, then one per answer) takes a while."""
    assert attempt.user is not None
    services.scoring_job_request(attempt=attempt, by=attempt.user)
    return wait_for_entries(attempt, count, timeout=300)[-1]


def with_params(monkeypatch: pytest.MonkeyPatch, **params: Any) -> None:
    """The scorer's configuration.json says these params (the full configuration's concurrency is 8)."""
    document = packages.EnvironmentPackage.configuration_document

    def changed(package: packages.EnvironmentPackage) -> dict[str, Any]:
        made = document(package)
        if package.slug == SLUG:
            made["params"] = {**made["params"], **params}
        return made

    monkeypatch.setattr(packages.EnvironmentPackage, "configuration_document", changed)


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(400)
def test_the_worker_scores_the_starting_reference_and_broken_solutions_through_the_budget_proxy(
    attempt_on: Callable[..., Attempt], endpoint: LocalChatServer, tmp_path: Path, settings: Any
) -> None:
    attempt = preparing(attempt_on(SLUG))
    small = packages.find(SLUG).configurations["small"]
    assert (attempt.environment.starting_score, attempt.environment.reference_score) == (
        small.starting_score,
        small.reference_score,
    )
    workspace = layout.workspace(attempt.pk)
    with worker_for(attempt, tmp_path):
        services.workspace_prepare_queue(attempt)  # the starting solution is scored once the workspace is ready
        start = wait_for_entries(attempt, 1, timeout=300)[0]
        assert {"solve_code_contests_rust.py", "judge.py", "judge_sandbox.py", "evaluate.py", "problems"} <= {
            p.name for p in workspace.iterdir()
        }
        assert not (workspace / "problems" / "heldout.jsonl").exists()
        assert start.score == pytest.approx(small.starting_score), start.message
        assert start.message.startswith("Solved 1 of 6 held-out problems")
        assert start.details["solved_names"] == ["sum-of-evens"]
        assert start.details["per_problem"]["balanced-brackets"]["reason"].startswith("compile error")
        assert start.details["budget"]["spent_tokens"] > 0
        # Every request reached the model with the real key, and asked for the configured model.
        assert set(endpoint.authorizations) == {f"Bearer {API_KEY}"}
        assert {r["model"] for r in endpoint.requests} == {"scripted-rust-model"}

        # Three at a time: the module's semaphore lets three requests through, three answers are judged at once.
        copy_into(PACKAGE / "reference", workspace)
        with pytest.MonkeyPatch.context() as patch:
            with_params(patch, concurrency=3)
            reference = scored(attempt, 2)
        assert reference.score == pytest.approx(small.reference_score), reference.message
        assert reference.details["solved_names"] == ["balanced-brackets", "longest-plateau", "sum-of-evens"]
        # Sampled, checked on the public examples, still wrong on the hidden ones: an honest miss.
        assert reference.details["per_problem"]["divisible-pairs"]["reason"].startswith("wrong answer on test 5")

        # A module that doesn't load scores NaN with the reason, as RE-Bench's scorer says it.
        put(workspace, "solve_code_contests_rust.py", "async def generate_solution(:\n")
        broken = scored(attempt, 3)
        assert broken.score is None
        assert broken.message.startswith("Failed to load solution module: SyntaxError"), broken.message

        # A module that goes looking for the key finds only the proxy's: it runs in the harness's
        # wrapper, in an instance of its own, and the scorer with its configuration is nowhere in view.
        put(workspace, "solve_code_contests_rust.py", SNOOP)
        snooping = scored(attempt, 4)
        assert snooping.score == 0.0, snooping.message
        snooped = (workspace / "snooped.json").read_text()
        assert API_KEY not in snooped
        found = json.loads(snooped)
        assert found["env"]["OPENAI_API_KEY"].startswith("proxy-")
        assert "run_solution.py" in found["self_cmdline"], found["self_cmdline"]
        assert "RUST_CODECONTESTS" not in found["parent_environ"] + json.dumps(found["env"])
        assert found["configuration"].startswith("refused"), found["configuration"][:200]
        assert found["env"]["OPENAI_BASE_URL"].startswith("http://127.0.0.1:")

        # The budget is the attempt's: the starting run (the site's) is not counted, the expert's runs are.
        spent = sum(
            e.details["attempt_spend"]["tokens"] for e in (reference, broken, snooping) if "attempt_spend" in e.details
        )
        assert spent == reference.details["budget"]["spent_tokens"] > 0  # the broken and snooping runs called nothing
        # 1500 tokens left, too few for every problem: the proxy refuses the rest, and the spend stays under it.
        settings.RUST_CODECONTESTS_BUDGET_TOKENS = spent + 1_500
        put(
            workspace, "solve_code_contests_rust.py", (PACKAGE / "solution" / "solve_code_contests_rust.py").read_text()
        )
        starved = scored(attempt, 5)
        assert starved.details["attempt_spent_before"]["tokens"] == spent
        assert starved.details["budget"]["max_tokens"] == 1_500
        assert starved.details["budget"]["refused"] >= 1, starved.message
        assert starved.details["budget"]["spent_tokens"] <= 1_500
        assert "The budget refused" in starved.message
        assert f"of {spent + 1_500} tokens" in starved.message
    attempt.refresh_from_db()
    final = services.attempt_score_update(attempt=attempt)
    assert final.raw == reference.score  # max over the valid entries
    assert final.normalised == pytest.approx(1.0)


def prepared(tmp_path: Path) -> Path:
    return prepared_workspace(SLUG, tmp_path / "workspace")


@pytest.mark.django_db
def test_without_a_model_endpoint_the_scorer_says_one_is_required(
    small_configuration: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_configuration.RUST_CODECONTESTS_MODEL_URL = ""
    workspace = prepared(tmp_path)
    result = run_scorer(SLUG, workspace, tmp_path)
    assert result["score"] is None
    assert "needs a model endpoint: set RUST_CODECONTESTS_MODEL_URL" in result["message"]


@pytest.mark.django_db
def test_an_unreachable_model_makes_every_problem_fail_and_says_why(
    small_configuration: Any, tmp_path: Path, model: LocalChatServer
) -> None:
    small_configuration.RUST_CODECONTESTS_MODEL_URL = model.url
    model.stop()  # nothing listens there any more
    workspace = prepared(tmp_path)
    result = run_scorer(SLUG, workspace, tmp_path)
    assert result["score"] is None
    assert "The solution failed on every held-out problem" in result["message"]
    assert "InternalServerError" in result["message"], result["message"]
    assert "502" in result["message"], result["message"]
    # Six problems, each tried three times: openai's client retries a 5xx twice (its default max_retries).
    assert result["details"]["budget"]["upstream_errors"] == 18


@pytest.mark.django_db
def test_the_full_configuration_needs_the_dataset_path(settings: Any) -> None:
    settings.ENVIRONMENT_CONFIGURATION = "full"
    settings.ENVIRONMENT_CONFIGURATION_OVERRIDES = {}
    settings.RUST_CODECONTESTS_DATASET = ""
    with pytest.raises(packages.ConfigurationError, match="needs RUST_CODECONTESTS_DATASET"):
        packages.find(SLUG).configuration_document()


@pytest.mark.django_db
def test_with_the_attempts_budget_spent_the_scorer_says_so_and_calls_nothing(
    small_configuration: Any, tmp_path: Path, model: LocalChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_configuration.RUST_CODECONTESTS_MODEL_URL = model.url
    small_configuration.RUST_CODECONTESTS_BUDGET_TOKENS = 1_000
    small_configuration.RUST_CODECONTESTS_BUDGET_USD = 0
    small_configuration.RUST_CODECONTESTS_RUSTC = ""
    judge_rustc()
    monkeypatch.setenv("RUST_CODECONTESTS_API_KEY", API_KEY)
    # What the worker hands the scorer: the attempt's earlier runs spent 1000 tokens of 1000.
    monkeypatch.setenv(ATTEMPT_SPEND_ENV, json.dumps({"tokens": 1_000, "cost": 0.0}))
    result = run_scorer(SLUG, prepared(tmp_path), tmp_path)
    assert result["score"] is None
    assert result["message"] == (
        "The attempt's model budget is spent: it has used 1000 tokens of 1000 tokens. Nothing was run."
    )
    assert result["details"]["attempt_spend"] == {"tokens": 0, "cost": 0.0}
    assert model.requests == []

    # 999 spent: one token left, too few for any request; the run goes ahead and the proxy refuses.
    monkeypatch.setenv(ATTEMPT_SPEND_ENV, json.dumps({"tokens": 999, "cost": 0.0}))
    (tmp_path / "again").mkdir()
    result = run_scorer(SLUG, prepared(tmp_path / "again"), tmp_path)
    assert result["details"]["budget"]["max_tokens"] == 1
    assert result["details"]["attempt_spend"]["tokens"] == 0
    assert model.requests == []


# One problem's call never returns (awaiting forever): it fails alone at the per-problem limit.
AWAITS_FOREVER = """
import asyncio

async def generate_solution(client, semaphore, problem):
    if problem["name"] == "grid-paths":
        await asyncio.sleep(3600)
    return "fn main() {}"
"""
# One blocks the whole event loop once the others have answered: the run ends at its limit.
BLOCKS_THE_LOOP = """
import asyncio, time

async def generate_solution(client, semaphore, problem):
    if problem["name"] == "longest-plateau":
        await asyncio.sleep(0.2)
        time.sleep(3600)
    return "fn main() {}"
"""


@pytest.mark.django_db
def test_a_stalled_problem_fails_alone_and_a_run_cut_short_keeps_the_answers_it_gave(
    small_configuration: Any, tmp_path: Path, model: LocalChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_configuration.RUST_CODECONTESTS_MODEL_URL = model.url
    small_configuration.RUST_CODECONTESTS_RUSTC = ""
    judge_rustc()
    for number, (module, stalled, reason) in enumerate(
        [
            (AWAITS_FOREVER, "grid-paths", "generate_solution ran past 1 s"),
            (BLOCKS_THE_LOOP, "longest-plateau", "the solution ran past 4 s before answering"),
        ]
    ):
        with_params(monkeypatch, problem_timeout_seconds=1 if number == 0 else 60, solution_timeout_seconds=4)
        (tmp_path / str(number)).mkdir()
        workspace = prepared(tmp_path / str(number))
        put(workspace, "solve_code_contests_rust.py", module)
        result = run_scorer(SLUG, workspace, tmp_path)
        per_problem = result["details"]["per_problem"]
        assert len(per_problem) == 6
        assert per_problem[stalled]["reason"] == reason, per_problem[stalled]
        # The other five answered at once and were judged (an empty program prints nothing: a wrong answer).
        judged = {name: r["reason"] for name, r in per_problem.items() if name != stalled}
        assert all(why.startswith("wrong answer") for why in judged.values()), judged
        assert result["score"] == 0.0
