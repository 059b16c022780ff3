"""Starting solution: ask the model once per problem and return the first ```rust block, unchecked.

The scorer imports this module and awaits `generate_solution(client, semaphore, problem)` once per
held-out problem, all problems at once: `client` is an `openai.AsyncOpenAI` whose requests go through
the scorer's budget proxy, `semaphore` an `asyncio.Semaphore` to hold around requests, `problem` a
dict (name, description, public_tests, time_limit, memory_limit_bytes). The string returned is the
Rust program the scorer compiles and runs on the hidden tests. OPENAI_MODEL names the model the proxy
serves (it answers with that model whatever a request asks for); RUSTC names a compiler you may use
to check candidates (judge.py does).
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

FENCE = re.compile(r"```(?:rust|rs)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
MODEL = os.environ.get("OPENAI_MODEL") or "gpt-3.5-turbo-0125"


def extract_rust(text: str) -> str:
    blocks = FENCE.findall(text)
    return blocks[0].strip() if blocks else ""


async def generate_solution(client: Any, semaphore: asyncio.Semaphore, problem: dict[str, Any]) -> str:
    prompt = (
        "Solve this competitive programming problem in Rust. Read from stdin and write to stdout.\n\n"
        f"# {problem['name']}\n\n{problem['description']}\n\nAnswer with the program in a ```rust block."
    )
    async with semaphore:
        response = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}])
    return extract_rust(response.choices[0].message.content or "")
