"""Test scorer grading_test_noisy: see tests/graders/test_sandbox_faults.py."""

import json
import os
import sys
from pathlib import Path

MARKER = os.environ.pop("REBENCH_RESULT_MARKER", "REBENCH-RESULT")
WORKSPACE = Path(sys.argv[1])


def emit(result: object) -> None:
    print(f"\n{MARKER}{json.dumps(result)}{MARKER}")


line = "x" * 1023 + "\n"
for _ in range(100 * 1024):  # 100 MB
    sys.stdout.write(line)
emit({"score": 2.0, "message": "after 100 MB of output"})
