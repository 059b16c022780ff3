"""Test scorer grading_test_slow: see tests/graders/test_sandbox_faults.py."""

import json
import os
import sys
import time
from pathlib import Path

MARKER = os.environ.pop("REBENCH_RESULT_MARKER", "REBENCH-RESULT")
WORKSPACE = Path(sys.argv[1])


def emit(result: object) -> None:
    print(f"\n{MARKER}{json.dumps(result)}{MARKER}")


# Sleeps as long as the workspace's sleep.txt says; records each start, for the killed-worker test.
with (WORKSPACE / "starts.txt").open("a") as handle:
    handle.write(f"{os.getpid()}\n")
path = WORKSPACE / "sleep.txt"
time.sleep(float(path.read_text()) if path.exists() else 0)
emit({"score": 3.0, "message": "slept"})
