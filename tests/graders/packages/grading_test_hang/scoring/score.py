"""Test scorer grading_test_hang: see tests/graders/test_sandbox_faults.py."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

MARKER = os.environ.pop("REBENCH_RESULT_MARKER", "REBENCH-RESULT")
WORKSPACE = Path(sys.argv[1])


def emit(result: object) -> None:
    print(f"\n{MARKER}{json.dumps(result)}{MARKER}")


# A child that would outlive us if only the scorer itself were killed.
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
time.sleep(600)
emit({"score": 1.0})
