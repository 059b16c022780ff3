"""ai_rd_rust_codecontests_inference's Rust judge, run on this machine: on hand-written programs (each kind of failure
with a clear reason within its limits, nothing written outside its folder, only outputs trusted, one source wherever it
runs), on the scripted model's candidates, and on every held-out problem.

One file, so that one worker runs these in turn: the judge's folders are the machine's (/tmp/rust-judge-*, as root),
and a test checks that it leaves none behind.
"""

from __future__ import annotations

import ast
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.environments.rust_codecontests_support import PACKAGE, judge, judge_rustc, make_problems
from tests.environments.scoring_support import run_scorer

# run_scorer marks these tests slow as they were beside the scorer's (tests/conftest.py is_slow): they compile and
# run Rust programs.
__all__ = ["run_scorer"]


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
    imported: set[str | None] = set()
    for node in ast.walk(ast.parse((scoring / "judge.py").read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
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
