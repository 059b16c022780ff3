"""The scorer's result protocol: one JSON object, between the run's marker, on standard output.

The worker hands each scoring run a fresh marker in REBENCH_RESULT_MARKER (workstation.scoring's
RESULT_MARKER_ENV) and reads the object between its two copies (workstation.scoring.outcome_from):
{"score": a number, or null for an invalid run, "message": text, "details": {...}}. What the
expert's code prints can't forge a result, because it never learns the marker: emit() takes it out
of the environment before anything else runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

MARKER_ENV = "REBENCH_RESULT_MARKER"


def nan(message: str, **details: Any) -> dict[str, Any]:
    """An invalid (NaN) result with its reason: scored, but counting as no valid score."""
    return {"score": None, "message": message, "details": details}


def emit(score: Callable[[], dict[str, Any]]) -> None:
    """Take the marker out of the environment, run `score`, and print its result between two copies of it."""
    marker = os.environ.pop(MARKER_ENV, "REBENCH-RESULT")
    result = score()
    print(f"\n{marker}{json.dumps(result)}{marker}")


ATTEMPT_SPEND_ENV = "REBENCH_ATTEMPT_SPEND"


def attempt_spend_before() -> dict[str, float]:
    """What the attempt spent of its model budget before this run (runs, shell calls), as the site counted it.

    The worker gives it in REBENCH_ATTEMPT_SPEND (workstation.scoring's ATTEMPT_SPEND_ENV) as JSON
    {"tokens", "cost"}; taken out of the environment here, so nothing the scorer starts inherits it.
    A scorer that spends on the expert's behalf reports its own spend as details["attempt_spend"].
    """
    try:
        given = json.loads(os.environ.pop(ATTEMPT_SPEND_ENV, "") or "{}")
    except ValueError:
        given = {}
    if not isinstance(given, dict):
        given = {}
    return {"tokens": spent_amount(given.get("tokens")), "cost": spent_amount(given.get("cost"))}


def spent_amount(value: Any) -> float:
    """A spend as it was reported (by a scorer, or the site): a finite non-negative number, else nothing."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < float("inf"):
        return float(value)
    return 0.0
