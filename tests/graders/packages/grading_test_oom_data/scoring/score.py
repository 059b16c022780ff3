"""Test scorer grading_test_oom_data: see tests/graders/test_sandbox_faults.py."""

import json
import os
import sys
from pathlib import Path

MARKER = os.environ.pop("REBENCH_RESULT_MARKER", "REBENCH-RESULT")
WORKSPACE = Path(sys.argv[1])


def emit(result: object) -> None:
    print(f"\n{MARKER}{json.dumps(result)}{MARKER}")


hog = bytearray(4 * 1024**3)
emit({"score": float(len(hog))})
