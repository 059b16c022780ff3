"""Try your solution on the training problems (problems/train.jsonl), judged as the scorer judges.

Usage: python evaluate.py [--limit N] [--concurrency N]   (the shell's OPENAI_BASE_URL: the attempt's budget pays)
As the scorer does on held-out problems you never see (through its budget proxy): imports
solve_code_contests_rust.py, awaits generate_solution(client, semaphore, problem) for every problem
at once with each problem's public view, and judges each returned program on all the problem's tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import judge
import openai

HERE = Path(__file__).resolve().parent
PUBLIC = ("name", "description", "public_tests", "time_limit", "memory_limit_bytes")


async def answers(problems: list[dict[str, Any]], concurrency: int) -> list[str | BaseException]:
    sys.path.insert(0, str(HERE))
    import solve_code_contests_rust as solution  # type: ignore[import-not-found]  # beside this file, on the path above

    client = openai.AsyncOpenAI()  # OPENAI_BASE_URL and OPENAI_API_KEY from the environment
    semaphore = asyncio.Semaphore(concurrency)
    try:
        views = [{k: p[k] for k in PUBLIC if k in p} for p in problems]
        return await asyncio.gather(
            *(solution.generate_solution(client, semaphore, view) for view in views), return_exceptions=True
        )
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    problems = [json.loads(line) for line in (HERE / "problems" / "train.jsonl").read_text().splitlines() if line]
    problems = problems[: args.limit] if args.limit else problems
    rustc = judge.find_rustc(os.environ.get("RUSTC", ""))
    solved = 0
    for problem, answer in zip(problems, asyncio.run(answers(problems, args.concurrency)), strict=True):
        if not isinstance(answer, str):
            print(f"{problem['name']}: generate_solution failed: {answer!r}"[:400])
            continue
        limits = judge.Limits().for_problem(problem)
        verdict = judge.judge(answer, judge.problem_tests(problem), rustc=rustc, limits=limits)
        solved += verdict.solved
        print(f"{problem['name']}: {verdict.reason}")
    print(f"solved {solved} of {len(problems)}")


if __name__ == "__main__":
    main()
