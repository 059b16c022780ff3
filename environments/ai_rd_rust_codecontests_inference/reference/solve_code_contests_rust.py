"""Reference solution: sample several programs, keep the first that passes the public examples.

Same interface as the starting solution (`generate_solution(client, semaphore, problem)` returns the
Rust program). It asks for four choices in one request (one prompt, four completions: cheaper than
four requests), compiles each distinct candidate with judge.py and runs it on the problem's public
examples, and returns the first that passes them — or, failing that, the first that compiles.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import judge
import openai

FENCE = re.compile(r"```(?:rust|rs)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
MODEL = os.environ.get("OPENAI_MODEL") or "gpt-3.5-turbo-0125"
SAMPLES = 4
SYSTEM = (
    "You are an expert competitive programmer who writes correct, efficient Rust 2021 with only the standard "
    "library. Read all of stdin at once, parse with split_whitespace, use i64/u64 for anything that can grow, "
    "and write output through a locked, buffered stdout."
)


def extract_rust(text: str) -> str:
    blocks = FENCE.findall(text)
    return blocks[-1].strip() if blocks else ""


def examples(problem: dict[str, Any]) -> str:
    tests = problem.get("public_tests") or {}
    pairs = zip(tests.get("input") or [], tests.get("output") or [], strict=False)
    return "\n".join(f"Input:\n{i}\nOutput:\n{o}" for i, o in pairs)


async def sample(client: Any, semaphore: asyncio.Semaphore, messages: list[dict[str, str]]) -> list[str]:
    async with semaphore:
        try:
            response = await client.chat.completions.create(
                model=MODEL, messages=messages, n=SAMPLES, temperature=0.8, max_tokens=2048
            )
        except openai.APIStatusError:  # e.g. too little budget left for four: one plain request may still fit
            response = await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=1024)
    return [choice.message.content or "" for choice in response.choices]


async def generate_solution(client: Any, semaphore: asyncio.Semaphore, problem: dict[str, Any]) -> str:
    prompt = (
        f"# {problem['name']}\n\n{problem['description']}\n\n## Examples\n{examples(problem)}\n\n"
        "Think about edge cases and overflow, then give the complete program in one ```rust block."
    )
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
    texts = await sample(client, semaphore, messages)
    candidates = list(dict.fromkeys(c for c in map(extract_rust, texts) if c))
    if not candidates:
        return ""
    rustc = judge.find_rustc(os.environ.get("RUSTC", ""))
    public = judge.problem_tests(problem, hidden=False)
    limits = judge.Limits().for_problem(problem)
    compiled = None
    for candidate in candidates:
        # The judge compiles and runs: blocking work, off the event loop so other problems go on meanwhile.
        verdict = await asyncio.to_thread(judge.judge, candidate, public, rustc=rustc, limits=limits)
        if verdict.solved:
            return candidate
        if compiled is None and not verdict.reason.startswith("compile error"):
            compiled = candidate
    return compiled or candidates[0]
