"""ai_rd_rust_codecontests_inference: the Rust judge on hand-written programs, and the scorer end to end.

The model is the scripted OpenAI-compatible server (scripted_model/serve.py) started on 127.0.0.1
by each test, so the answers are known: the scorer, the budget proxy and the judge are under test.
Through the worker, the scaffold and the answers run in harness instances of the attempt's sandbox
and reach the model only over the bridge to the scorer's proxy; run in-process (`run_scorer`), the
harness is measure's unsandboxed stand-in.
"""

from __future__ import annotations

import ast
import json
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from environments import packages
from environments.common.llm import LocalChatServer
from graders import services
from tests.conftest import MISSING_TOOL_REASONS
from tests.environments.scoring_support import (
    copy_into,
    load_module,
    run_scorer,
    small_configuration,
    wait_for_entries,
    worker_for,
)
from tests.workspace_support import put
from trials.models import Attempt
from workstation import layout

SLUG = "ai_rd_rust_codecontests_inference"
PACKAGE = Path(settings.BASE_DIR) / "environments" / SLUG
API_KEY = "sk-real-key-only-the-scorer-holds"

__all__ = ["small_configuration"]


# judge.py imports judge_sandbox from beside it, as it runs: loaded first under that name, it is found.
load_module("judge_sandbox", PACKAGE / "scoring" / "judge_sandbox.py")
judge = load_module("rust_judge", PACKAGE / "scoring" / "judge.py")
scripted = load_module("rust_scripted_model", PACKAGE / "scripted_model" / "serve.py")
make_problems = load_module("rust_make_problems", PACKAGE / "problems" / "make_problems.py")


def heldout() -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in (PACKAGE / "scoring" / "problems" / "heldout.jsonl").read_text().splitlines()]
    return {row["name"]: row for row in rows}


SUM = [("3\n1 2 3\n", "6\n"), ("2\n1000000000 1000000000\n", "2000000000\n")]
READ_AND_SUM = """
use std::io::{self, Read};
fn main() {
    let mut input = String::new();
    io::stdin().read_to_string(&mut input).unwrap();
    let v: Vec<i64> = input.split_whitespace().map(|x| x.parse().unwrap()).collect();
    println!("{}", v[1..].iter().sum::<i64>());
}
"""
PROGRAMS = {
    "right": (READ_AND_SUM, True, "passed all 2 tests"),
    "wrong": ('fn main() { println!("6"); }', False, "wrong answer on test 2 of 2: token 1: got '6'"),
    "not compiling": ('fn main() { let x: i32 = "six"; }', False, "compile error: error[E0308]: mismatched types"),
    "infinite loop": (
        "fn main() { let mut x: u64 = 0; loop { x = x.wrapping_mul(31).wrapping_add(7); if x == 1 { break; } } }",
        False,
        "time limit exceeded (1 s of CPU) on test 1 of 2",
    ),
    "sleeps forever": (
        "fn main() { std::thread::sleep(std::time::Duration::from_secs(600)); }",
        False,
        "time limit exceeded on test 1 of 2 (ran past 3 s of wall time)",
    ),
    "huge output": (
        "use std::io::Write;\nfn main() { let out = std::io::stdout(); let mut out = out.lock(); "
        "loop { out.write_all(&[b'9'; 65536]).unwrap(); } }",
        False,
        "output limit exceeded",
    ),
    "fork bomb": (
        'use std::process::Command;\nfn main() { loop { if let Err(e) = Command::new("/proc/self/exe").spawn() '
        '{ eprintln!("fork failed: {}", e); std::process::exit(7); } } }',
        False,
        "runtime error on test 1 of 2 (exit status 7): fork failed: Resource temporarily unavailable",
    ),
    "thread": (
        'fn main() { let t = std::thread::spawn(|| 6); println!("{}", t.join().unwrap()); }',
        False,
        "failed to spawn thread",
    ),
    "disk filler": (
        'use std::io::Write;\nfn main() { let mut f = std::fs::File::create("fill.bin").unwrap(); '
        "let block = vec![0u8; 1 << 20]; loop { f.write_all(&block).unwrap(); } }",
        False,
        "output limit exceeded (wrote more than 16 MB to a file or stdout) on test 1 of 2",
    ),
    "memory hog": (
        "fn main() { let mut v: Vec<Vec<u8>> = Vec::new(); loop { v.push(vec![1u8; 1 << 24]); } }",
        False,
        "aborted (often running out of memory) on test 1 of 2",
    ),
}
LEAK = Path("/tmp/rust-judge-leaked-inputs.txt")  # noqa: S108 - where any user may write, Landlock aside
LEAKER = f"""
use std::io::Read;
fn main() {{
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).unwrap();
    if let Err(e) = std::fs::write("{LEAK}", &input) {{ eprintln!("no write: {{}}", e); std::process::exit(9); }}
    println!("6");
}}
"""


def judge_folders() -> list[Path]:
    return [*Path(tempfile.gettempdir()).glob("rust-judge-*"), *Path("/tmp").glob("rust-judge-*")]  # noqa: S108


def judge_rustc() -> str:
    """The rustc the judge will use; the test is skipped, saying why, where it finds none."""
    try:
        return judge.find_rustc()
    except judge.JudgeUnavailable:
        pytest.skip(MISSING_TOOL_REASONS["rustc"])


@pytest.fixture(scope="module")
def rustc() -> str:
    return judge_rustc()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", list(PROGRAMS))
def test_the_judge_scores_each_kind_of_program_with_a_clear_reason_within_its_limits(kind: str, rustc: str) -> None:
    source, solved, reason = PROGRAMS[kind]
    folders = set(judge_folders())
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    verdict = judge.judge(source, SUM, rustc=rustc, limits=judge.Limits())
    assert verdict.solved is solved
    assert reason in verdict.reason
    # Bounded: the wall-clock kill (3 s) plus compiling; CPU at most the 1 s limit plus compiling.
    assert time.monotonic() - started < 30
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert (used.ru_utime - children.ru_utime) < 15
    assert set(judge_folders()) <= folders  # its temporary folder is gone, whatever the program did


@pytest.mark.skipif(judge.landlock_abi() < 1, reason="this kernel has no Landlock")
def test_an_answer_writes_nowhere_but_its_own_test_folder(rustc: str) -> None:
    """The tests' inputs reach the program: it must not leave them where the expert could read them."""
    LEAK.unlink(missing_ok=True)
    verdict = judge.judge(LEAKER, SUM, rustc=rustc, limits=judge.Limits())
    assert not LEAK.exists()
    assert verdict.reason.startswith("runtime error on test 1 of 2 (exit status 9): no write: Permission denied")


def test_the_verdict_on_runs_made_elsewhere_trusts_only_the_outputs_it_compares(tmp_path: Path) -> None:
    """What judge_answer.py sends back is the expert's side: a report claiming success proves nothing."""
    limits = judge.Limits()
    expected = [out for _given, out in SUM]
    ok = {"returncode": 0, "timed_out": False, "stderr": ""}
    (tmp_path / "0.out").write_text("6\n")
    (tmp_path / "1.out").write_text("6\n")
    forged = judge.verdict_from({"runs": [ok, ok]}, tmp_path, expected, limits=limits)
    assert forged.reason == "wrong answer on test 2 of 2: token 1: got '6', expected '2000000000'"
    (tmp_path / "1.out").write_text("2000000000\n")
    assert judge.verdict_from({"runs": [ok, ok]}, tmp_path, expected, limits=limits).solved
    assert judge.verdict_from({"runs": [ok]}, tmp_path, expected, limits=limits).reason == (
        "no run of test 2 of 2 came back from the judge"
    )
    assert not judge.verdict_from({"runs": "all passed"}, tmp_path, expected, limits=limits).solved
    (tmp_path / "1.out").unlink()
    assert "did not come back" in judge.verdict_from({"runs": [ok, ok]}, tmp_path, expected, limits=limits).reason
    slow = {"returncode": 0, "timed_out": True, "stderr": ""}
    assert judge.verdict_from({"runs": [slow]}, tmp_path, expected, limits=limits).reason.startswith(
        "time limit exceeded on test 1 of 2"
    )
    assert judge.verdict_from({"compile_error": "compile error: nope"}, tmp_path, expected, limits=limits).reason == (
        "compile error: nope"
    )


def test_the_judge_refuses_an_empty_answer_and_an_oversized_source(rustc: str) -> None:
    assert judge.judge("  \n", SUM, rustc=rustc, limits=judge.Limits()).reason == "no Rust program in the answer"
    huge = "fn main() {}\n" + "// padding\n" * 30_000
    assert "larger than 256 KB" in judge.judge(huge, SUM, rustc=rustc, limits=judge.Limits()).reason


def test_a_missing_rustc_is_a_configuration_error_naming_the_fix() -> None:
    with pytest.raises(judge.JudgeUnavailable, match="apt-get install rustc"):
        judge.find_rustc("/nonexistent/rustc")


def test_the_judge_is_one_source_in_every_place_it_runs() -> None:
    """scoring/ holds the judge's modules; the expert's workspace (from solution/) and the harness's
    inputs (from scoring/harness/, listed in score.py's JUDGE_SCRIPTS) get them through links, which
    packaging copies as their text: no second copy that could drift, and none left out."""
    scoring = PACKAGE / "scoring"
    imported = {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in ast.walk(ast.parse((scoring / "judge.py").read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [node])
    }
    modules = {"judge.py", *(f"{name}.py" for name in imported if name and (scoring / f"{name}.py").is_file())}
    assert modules == {"judge.py", "judge_sandbox.py"}
    for place in (PACKAGE / "solution", scoring / "harness"):
        for name in modules:
            link = place / name
            assert link.is_symlink(), f"{link} must be a link to {scoring / name}, not a copy"
            assert link.resolve() == (scoring / name).resolve()
    score = ast.parse((scoring / "score.py").read_text())
    listed = next(
        ast.literal_eval(node.value)
        for node in score.body
        if isinstance(node, ast.Assign) and any(getattr(target, "id", "") == "JUDGE_SCRIPTS" for target in node.targets)
    )
    assert modules <= set(listed), "score.py's JUDGE_SCRIPTS must send the harness every module of the judge"


def test_the_scripted_models_candidates_meet_the_held_out_tests_as_designed(rustc: str) -> None:
    """Right ones pass every hidden test, wrong ones fail for the reason they were written with."""
    problems = heldout()
    expected = {
        "sum-of-evens.0": "passed all",
        "balanced-brackets.0": "compile error",
        "balanced-brackets.1": "passed all",
        "longest-plateau.0": "wrong answer on test 1",  # off by one: fails a public example
        "longest-plateau.1": "passed all",
        "divisible-pairs.0": "wrong answer on test 5",  # i32 count: only the large hidden test overflows
        "divisible-pairs.1": "passed all",
        "grid-paths.1": "wrong answer on test 1",
        "grid-paths.2": "wrong answer on test 1",
        "range-sums.0": "wrong answer on test 4",  # i32 sums: only the large hidden test overflows
        "range-sums.1": "passed all",
    }
    got = {}
    for path in sorted((PACKAGE / "scripted_model" / "answers").glob("*.rs")):
        problem = problems[path.stem.rsplit(".", 1)[0]]
        verdict = judge.judge(path.read_text(), judge.problem_tests(problem), rustc=rustc, limits=judge.Limits())
        got[path.stem] = verdict.reason
    assert set(got) == set(expected)
    for name, reason in expected.items():
        assert got[name].startswith(reason), (name, got[name])


GRID_PATHS = """
use std::io::{self, Read};
fn main() {
    let mut input = String::new();
    io::stdin().read_to_string(&mut input).unwrap();
    let mut words = input.split_whitespace();
    let r: usize = words.next().unwrap().parse().unwrap();
    let c: usize = words.next().unwrap().parse().unwrap();
    let grid: Vec<&[u8]> = (0..r).map(|_| words.next().unwrap().as_bytes()).collect();
    let mut ways = vec![vec![0u64; c]; r];
    for i in 0..r {
        for j in 0..c {
            if grid[i][j] == b'#' { continue; }
            if i == 0 && j == 0 { ways[i][j] = 1; continue; }
            let up = if i > 0 { ways[i - 1][j] } else { 0 };
            let left = if j > 0 { ways[i][j - 1] } else { 0 };
            ways[i][j] = (up + left) % 1_000_000_007;
        }
    }
    println!("{}", ways[r - 1][c - 1]);
}
"""


def test_every_held_out_problem_is_solvable_and_its_shipped_tests_are_what_the_generator_makes(rustc: str) -> None:
    verdict = judge.judge(GRID_PATHS, judge.problem_tests(heldout()["grid-paths"]), rustc=rustc, limits=judge.Limits())
    assert verdict.solved, verdict.reason
    train, held = make_problems.build()
    assert list(heldout().values()) == held
    shipped_train = (PACKAGE / "solution" / "problems" / "train.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in shipped_train] == train
    assert len(held) == 6
    assert len(train) == 8
    assert not {p["name"] for p in held} & {p["name"] for p in train}


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
import json, os, sys
found = {"env": dict(os.environ)}
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
print("fn main() {}")
"""


def scored(attempt: Attempt, count: int) -> Any:
    """The expert presses Score; a scoring run of six problems, each in two sandbox instances, takes a while."""
    services.scoring_job_request(attempt=attempt, by=attempt.user)
    return wait_for_entries(attempt, count, timeout=300)[-1]


def with_concurrency(monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    """The scorer's configuration.json says `workers` problems at a time (the full configuration's is 8)."""
    document = packages.EnvironmentPackage.configuration_document

    def more_at_once(package: packages.EnvironmentPackage) -> dict[str, Any]:
        made = document(package)
        if package.slug == SLUG:
            made["params"] = {**made["params"], "concurrency": workers}
        return made

    monkeypatch.setattr(packages.EnvironmentPackage, "configuration_document", more_at_once)


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(400)
def test_the_worker_scores_the_starting_reference_and_broken_scaffolds_through_the_budget_proxy(
    attempt_on: Callable[..., Attempt], endpoint: LocalChatServer, tmp_path: Path, settings: Any
) -> None:
    attempt = attempt_on(SLUG)
    small = packages.find(SLUG).configurations["small"]
    assert (attempt.environment.starting_score, attempt.environment.reference_score) == (
        small.starting_score,
        small.reference_score,
    )
    workspace = layout.workspace(attempt.pk)
    with worker_for(attempt, tmp_path):
        services.workspace_prepare_queue(attempt)  # the starting scaffold is scored once the workspace is ready
        start = wait_for_entries(attempt, 1, timeout=300)[0]
        assert {"scaffold.py", "judge.py", "judge_sandbox.py", "evaluate.py", "problems"} <= {
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

        # Three problems at a time: three harness instances at once, each bridged to the one proxy.
        copy_into(PACKAGE / "reference", workspace)
        with pytest.MonkeyPatch.context() as patch:
            with_concurrency(patch, 3)
            reference = scored(attempt, 2)
        assert reference.score == pytest.approx(small.reference_score), reference.message
        assert reference.details["solved_names"] == ["balanced-brackets", "longest-plateau", "sum-of-evens"]
        # Sampled, checked on the public examples, still wrong on the hidden ones: an honest miss.
        assert reference.details["per_problem"]["divisible-pairs"]["reason"].startswith("wrong answer on test 5")

        put(workspace, "scaffold.py", "def solve(:\n")
        broken = scored(attempt, 3)
        assert broken.score is None
        assert broken.message.startswith("The scaffold failed on every held-out problem")
        assert "SyntaxError" in broken.message

        # A scaffold that goes looking for the key finds only the proxy's: its parent is the harness's
        # wrapper, in an instance of its own, and the scorer with its configuration is nowhere in view.
        put(workspace, "scaffold.py", SNOOP)
        snooping = scored(attempt, 4)
        assert snooping.score == 0.0, snooping.message
        snooped = (workspace / "snooped.json").read_text()
        assert API_KEY not in snooped
        found = json.loads(snooped)
        assert found["env"]["OPENAI_API_KEY"].startswith("proxy-")
        assert "run_scaffold.py" in found["parent_cmdline"], found["parent_cmdline"]
        assert "RUST_CODECONTESTS" not in found["parent_environ"]
        assert found["configuration"].startswith("refused"), found["configuration"][:200]
        assert "OPENAI_BASE_URL=http://127.0.0.1:" in found["parent_environ"]

        # A budget too small for every problem: the proxy refuses the rest, and the spend stays under it.
        settings.RUST_CODECONTESTS_BUDGET_TOKENS = 1_500
        put(workspace, "scaffold.py", (PACKAGE / "solution" / "scaffold.py").read_text())
        starved = scored(attempt, 5)
        assert starved.details["budget"]["refused"] >= 1, starved.message
        assert starved.details["budget"]["spent_tokens"] <= 1_500
        assert "The budget refused" in starved.message
    attempt.refresh_from_db()
    final = services.attempt_score_update(attempt=attempt)
    assert final.raw == reference.score  # max over the valid entries
    assert final.normalised == pytest.approx(1.0)


def prepared(tmp_path: Path) -> Path:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    packages.find(SLUG).prepare_staging(workspace)
    return workspace


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
    assert "The scaffold failed on every held-out problem" in result["message"]
    assert "HTTP Error 502" in result["message"]
    assert result["details"]["budget"]["upstream_errors"] == 6


@pytest.mark.django_db
def test_the_full_configuration_needs_the_dataset_path(settings: Any) -> None:
    settings.ENVIRONMENT_CONFIGURATION = "full"
    settings.ENVIRONMENT_CONFIGURATION_OVERRIDES = {}
    settings.RUST_CODECONTESTS_DATASET = ""
    with pytest.raises(packages.ConfigurationError, match="needs RUST_CODECONTESTS_DATASET"):
        packages.find(SLUG).configuration_document()
