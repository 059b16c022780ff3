"""ai_rd_rust_codecontests_inference's problems: the scripted model's candidates meet the held-out tests as designed,
and every held-out problem is solvable with the tests the generator makes.
"""

from __future__ import annotations

import json

from tests.environments.rust_codecontests_support import PACKAGE, heldout, judge, make_problems, rustc
from tests.environments.scoring_support import run_scorer

# rustc is the support module's fixture, registered by import; run_scorer marks these tests slow as they were beside
# the scorer's (tests/conftest.py is_slow): they compile and run Rust programs.
__all__ = ["run_scorer", "rustc"]


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
