"""What a scoring run yields: the marker around the scorer's JSON result, and the `Outcome` read from it."""

from __future__ import annotations

import json
import math
import secrets
import signal
from dataclasses import dataclass, field
from typing import Any

from workstation.scoring.processes import RunResult

RESULT_MARKER_ENV = "REBENCH_RESULT_MARKER"
# JSON {"tokens", "cost"}: what the attempt's earlier runs spent of its model budget (environments.common.result).
ATTEMPT_SPEND_ENV = "REBENCH_ATTEMPT_SPEND"


@dataclass
class Outcome:
    """What a scoring run yields for the score log: a number or NaN, a message, details."""

    score: float | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    # SHA-256 of the scorer that ran (EnvironmentPackage.scorer_digest); set by the worker, never by the scorer.
    scorer_digest: str = ""


OOM_SIGNS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "out of memory", "DefaultCPUAllocator")


def new_marker() -> str:
    return f"REBENCH-RESULT-{secrets.token_hex(12)}"


def outcome_from(result: RunResult, marker: str, *, timeout: float) -> Outcome:
    """Read the scorer's JSON result between markers; every failure becomes a NaN with a reason."""
    if result.timed_out:
        return Outcome(None, f"The scorer ran past its {timeout:g} s limit and was stopped.", {"timeout": True})
    parts = result.stdout.split(marker)
    payload = parts[1] if len(parts) >= 3 else None
    if result.returncode != 0 or payload is None:
        tail = result.stderr_tail()
        if any(sign in result.stderr for sign in OOM_SIGNS) or result.returncode == -signal.SIGKILL:
            return Outcome(None, "The scorer ran out of memory.", {"out_of_memory": True, "stderr_tail": tail})
        if result.returncode != 0:
            return Outcome(
                None,
                f"The scorer failed (exit status {result.returncode}).",
                {"returncode": result.returncode, "stderr_tail": tail},
            )
        return Outcome(None, "The scorer printed no result.", {"stderr_tail": tail})
    try:
        data = json.loads(payload)
    except ValueError:
        return Outcome(None, "The scorer's result is not JSON.", {"result": payload[:500]})
    if not isinstance(data, dict):
        data = {"score": data}
    score = data.get("score")
    message = str(data.get("message", ""))[:2000]
    raw_details = data.get("details")
    details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
    if score is None:
        return Outcome(None, message or "No valid score.", details)
    if isinstance(score, bool) or not isinstance(score, int | float):
        return Outcome(None, f"The scorer returned {type(score).__name__} {str(score)[:80]!r}, not a number.", details)
    score = float(score)
    if not math.isfinite(score):
        return Outcome(None, message or "The score is not a finite number.", details)
    return Outcome(score, message, details)
