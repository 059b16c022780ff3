"""The small configuration's "model": a scripted OpenAI-compatible endpoint with no weights and no network.

It recognises a held-out problem by its name in the prompt and answers with one of that problem's
canned candidates from `answers/` (a right program, plausible wrong ones, prose without code), as a
sampling model would: choice i of a request is candidate (seed + i) mod the number of candidates.
So one plain request gets candidate 0, and a scaffold that asks for several choices (`n`) and checks
them on the public examples finds better ones — the mechanism that separates the reference
scaffold from the starting one. The candidates are fixed, so its scores are reproducible.

Run it for the demo or to measure the small configuration: `python serve.py [--port 8765]`, then
RUST_CODECONTESTS_MODEL_URL=http://127.0.0.1:8765/v1.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from environments.common.llm import (  # noqa: E402 - after making the project importable
    LocalChatServer,
    serve_from_command_line,
)

ANSWERS = Path(__file__).resolve().parent / "answers"
# Candidates without code: what a model says when it has no program to offer.
PROSE = {
    "grid-paths.0": "This looks like a dynamic programming problem over the grid, counting paths to each cell "
    "from the cells above and to the left. I would need more time to write it carefully.",
}
UNKNOWN = "I'm not sure how to solve this problem."


def bank() -> dict[str, list[str]]:
    """Problem name → candidate answers, in order."""
    files = {p.stem: f"Here is a solution in Rust.\n\n```rust\n{p.read_text()}```\n" for p in ANSWERS.glob("*.rs")}
    files.update(PROSE)
    out: dict[str, list[str]] = {}
    for key in sorted(files, key=lambda k: (k.rsplit(".", 1)[0], int(k.rsplit(".", 1)[1]))):
        out.setdefault(key.rsplit(".", 1)[0], []).append(files[key])
    return out


def _prompt_text(body: dict[str, Any]) -> str:
    parts = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        parts.append(content if isinstance(content, str) else json.dumps(content))
    return "\n".join(parts)


def responder(candidates: dict[str, list[str]] | None = None) -> Any:
    candidates = candidates if candidates is not None else bank()
    # Longest names first, so a name that contains another one wins.
    names = sorted(candidates, key=len, reverse=True)

    def respond(body: dict[str, Any]) -> list[str]:
        text = _prompt_text(body)
        name = next((n for n in names if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)), None)
        asked, given = body.get("n"), body.get("seed")
        n = asked if isinstance(asked, int) and asked > 0 else 1
        seed = given if isinstance(given, int) else 0
        if name is None:
            return [UNKNOWN] * n
        options = candidates[name]
        return [options[(seed + i) % len(options)] for i in range(n)]

    return respond


def server(*, api_key: str = "", port: int = 0) -> LocalChatServer:
    return LocalChatServer(responder(), api_key=api_key, model="scripted-rust-model", port=port)


if __name__ == "__main__":
    serve_from_command_line(server, description=__doc__.splitlines()[0], name="scripted model", default_port=8765)
