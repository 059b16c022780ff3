"""Test scorer grading_test_tamper: see tests/graders/test_sandbox_faults.py."""

import json
import os
import sys
from pathlib import Path

MARKER = os.environ.pop("REBENCH_RESULT_MARKER", "REBENCH-RESULT")
WORKSPACE = Path(sys.argv[1])


def emit(result: object) -> None:
    print(f"\n{MARKER}{json.dumps(result)}{MARKER}")


# What a malicious solution imported by a scorer would try: rewrite the scoring code, rewrite the
# score log, read another attempt's workspace. Each attempt is reported; the test checks they failed.
report: dict[str, object] = {}
me = Path(__file__)
try:
    me.write_text("print('pwned')")
    report["rewrote_scorer"] = True
except OSError as exc:
    report["rewrote_scorer"] = type(exc).__name__
pointer = WORKSPACE / "other.txt"
other = pointer.read_text().strip() if pointer.exists() else ""
try:
    report["read_other"] = Path(other).read_text() if other else "unset"
except OSError as exc:
    report["read_other"] = type(exc).__name__
emit({"score": 1.0, "message": "tamper report", "details": report})
