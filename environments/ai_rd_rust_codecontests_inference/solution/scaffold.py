"""Starting scaffold: ask the model once for a Rust program and print it.

The scorer runs `python scaffold.py` once per held-out problem: the problem arrives as JSON on stdin
(name, description, public_tests, time_limit, memory_limit_bytes) and the Rust program is what this
prints. The model is reached through OPENAI_BASE_URL with OPENAI_API_KEY (a budget proxy's
one-run key); RUSTC names a compiler you may use to check candidates.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.request

FENCE = re.compile(r"```(?:rust|rs)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def chat(messages: list[dict[str, str]], **options: object) -> list[str]:
    """One chat-completions request; the text of each choice."""
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
    return blocks[0].strip() if blocks else ""


def solve(problem: dict) -> str:
    prompt = (
        "Solve this competitive programming problem in Rust. Read from stdin and write to stdout.\n\n"
        f"# {problem['name']}\n\n{problem['description']}\n\nAnswer with the program in a ```rust block."
    )
    return extract_rust(chat([{"role": "user", "content": prompt}])[0])


if __name__ == "__main__":
    print(solve(json.load(sys.stdin)))
