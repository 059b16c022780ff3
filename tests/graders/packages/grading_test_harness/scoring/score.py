"""Test scorer grading_test_harness: the expert's program.sh runs in the harness; its answer is the score.

The harness is also asked to read this very file (it must not be able to) and leaves a link in its
output (which must not come back); the details say what happened.
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import harness

MARKER = os.environ.pop("REBENCH_RESULT_MARKER", "REBENCH-RESULT")


def emit(result: object) -> None:
    print(f"\n{MARKER}{json.dumps(result)}{MARKER}")


result = harness.run(["sh", f"{harness.HARNESS_CODE}/run.sh", str(Path(__file__).resolve())], timeout=30)
out = result.output_dir
answer = (out / "answer.txt").read_text().strip() if (out / "answer.txt").is_file() else ""
details = {
    "files": sorted(result.files),
    "scorer_read": (out / "scorer.txt").read_text() if (out / "scorer.txt").is_file() else "",
    "scorer_error": (out / "scorer-error.txt").read_text().strip() if (out / "scorer-error.txt").is_file() else "",
}
try:
    emit({"score": float(answer), "message": "ran in the harness", "details": details})
except ValueError:
    emit({"score": None, "message": f"the program printed {answer[:80]!r}", "details": details})
