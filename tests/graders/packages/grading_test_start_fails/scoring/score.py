"""Test scorer grading_test_start_fails: the score is score.txt's number, as grading_test_ok's."""

import json
import os
import sys
from pathlib import Path

MARKER = os.environ.pop("REBENCH_RESULT_MARKER", "REBENCH-RESULT")
WORKSPACE = Path(sys.argv[1])


def emit(result: object) -> None:
    print(f"\n{MARKER}{json.dumps(result)}{MARKER}")


# The score is whatever number the workspace's score.txt holds (1.0 without one).
path = WORKSPACE / "score.txt"
emit({"score": float(path.read_text()) if path.exists() else 1.0, "message": "ok", "details": {"nan": float("nan")}})
