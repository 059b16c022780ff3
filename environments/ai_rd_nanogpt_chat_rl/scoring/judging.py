"""How the judge is asked which of two responses is better: the scorer's words, and `evaluation.py`'s.

Shared by the scorer and the workspace (where it is `judging.py`, beside `evaluation.py`): a
comparison the expert asks from the shell is the one the scorer asks, word for word.
"""

from __future__ import annotations

import re

SYSTEM = (
    "You compare two answers a chatbot could give to a user's question. The better answer is on topic, "
    "correct, complete and clear. Reply with exactly one letter: A or B."
)
VERDICT = re.compile(r"^\W*(?:response\s+)?([AB])\b", re.IGNORECASE)
# A verdict is one letter; the few tokens a judge may spend on it (a space, "Response", a period).
VERDICT_TOKENS = 5


class VerdictError(ValueError):
    """The judge answered, but not with A or B."""


def comparison(question: str, first: str, second: str) -> str:
    # Brackets would let an answer fake the sections of the template.
    def clean(text: str) -> str:
        return text.replace("[", "(").replace("]", ")")

    return (
        f"[Question]\n{clean(question)}\n[Response A]\n{clean(first)}\n[Response B]\n{clean(second)}\n[End]\n"
        "Which response is better? Reply with exactly one letter: A or B."
    )


def messages(question: str, first: str, second: str) -> list[dict[str, str]]:
    """The chat messages of one comparison (A is `first`)."""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": comparison(question, first, second)}]


def parse_verdict(text: str) -> str:
    """ "A" or "B" from the judge's answer, or VerdictError quoting it."""
    match = VERDICT.match(text.strip())
    if match is None:
        raise VerdictError(f"The judge's answer is neither A nor B: {text.strip()[:120]!r}.")
    return match.group(1).upper()
