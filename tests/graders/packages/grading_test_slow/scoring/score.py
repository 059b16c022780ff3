"""Test scorer grading_test_slow: the expert's part runs in the harness, sleeping as long as sleep.txt says.

Each start is recorded in the workspace's starts.txt, for the killed-worker test; the sleeping
process carries `rebench-slow-scorer` on its command line, so the test can see it go.
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import harness

MARKER = os.environ.pop("REBENCH_RESULT_MARKER", "REBENCH-RESULT")
SLEEP = "import os, time; time.sleep(float(open('sleep.txt').read()) if os.path.exists('sleep.txt') else 0)"


def emit(result: object) -> None:
    print(f"\n{MARKER}{json.dumps(result)}{MARKER}")


result = harness.run(["/bin/sh", "-c", f'echo start >> starts.txt; exec python3 -c "{SLEEP}" rebench-slow-scorer'])
emit({"score": 3.0 if result.ok else None, "message": "slept" if result.ok else result.stderr_tail()})
