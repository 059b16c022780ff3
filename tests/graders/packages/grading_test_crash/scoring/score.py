"""Test scorer grading_test_crash: see tests/graders/test_sandbox_faults.py."""

import json
import os
import sys
from pathlib import Path

MARKER = os.environ.pop("REBENCH_RESULT_MARKER", "REBENCH-RESULT")
WORKSPACE = Path(sys.argv[1])


def emit(result: object) -> None:
    print(f"\n{MARKER}{json.dumps(result)}{MARKER}")


print("starting", file=sys.stderr)
raise RuntimeError("the solution broke the scorer")
