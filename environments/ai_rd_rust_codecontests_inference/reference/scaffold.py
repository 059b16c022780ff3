"""Reference scaffold: sample several programs, keep the first that passes the public examples.

Same contract as the starting scaffold (problem JSON on stdin, Rust program on stdout). It asks for
four choices in one request (one prompt, four completions: cheaper than four requests), compiles
each distinct candidate with judge.py and runs it on the problem's public examples, and prints the
first that passes them — or, failing that, the first that compiles.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request

import judge

FENCE = re.compile(r"```(?:rust|rs)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
SAMPLES = 4
SYSTEM = (
    "You are an expert competitive programmer who writes correct, efficient Rust 2021 with only the standard "
    "library. Read all of stdin at once, parse with split_whitespace, use i64/u64 for anything that can grow, "
    "and write output through a locked, buffered stdout."
)


def chat(messages: list[dict[str, str]], **options: object) -> list[str]:
    body = {"model": os.environ.get("OPENAI_MODEL", ""), "messages": messages, **options}
    request = urllib.request.Request(  # noqa: S310 - the URL the scorer gives
        os.environ["OPENAI_BASE_URL"].rstrip("/") + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310 - as above
        return [choice["message"]["content"] for choice in json.load(response)["choices"]]


def extract_rust(text: str) -> str:
    blocks = FENCE.findall(text)
    return blocks[-1].strip() if blocks else ""


def examples(problem: dict) -> str:
    tests = problem.get("public_tests") or {}
    pairs = zip(tests.get("input") or [], tests.get("output") or [], strict=False)
    return "\n".join(f"Input:\n{i}\nOutput:\n{o}" for i, o in pairs)


def solve(problem: dict) -> str:
    prompt = (
        f"# {problem['name']}\n\n{problem['description']}\n\n## Examples\n{examples(problem)}\n\n"
        "Think about edge cases and overflow, then give the complete program in one ```rust block."
    )
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
    try:
        texts = chat(messages, n=SAMPLES, temperature=0.8, max_tokens=2048)
    except urllib.error.HTTPError:  # e.g. too little budget left for four: one plain request may still fit
        texts = chat(messages, max_tokens=1024)
    candidates = list(dict.fromkeys(c for c in map(extract_rust, texts) if c))
    if not candidates:
        return ""
    rustc = judge.find_rustc(os.environ.get("RUSTC", ""))
    public = judge.problem_tests(problem, hidden=False)
    limits = judge.Limits().for_problem(problem)
    compiled = None
    for candidate in candidates:
        verdict = judge.judge(candidate, public, rustc=rustc, limits=limits)
        if verdict.solved:
            return candidate
        if compiled is None and not verdict.reason.startswith("compile error"):
            compiled = candidate
    return compiled or candidates[0]


if __name__ == "__main__":
    print(solve(json.load(sys.stdin)))
