"""Test start step of grading_test_start_fails: see tests/graders/test_scoring_worker.py.

It fails, as a start step that trains a starting model on a machine without room for it would,
until a file named `start-allowed` sits in a folder above the staging folder it fills (the test's
protected folder): then it succeeds, so a retried preparation can.
"""

import sys
from pathlib import Path

staging = Path(sys.argv[1])
if not any((folder / "start-allowed").exists() for folder in staging.parents):
    sys.exit("training the starting model failed: CUDA out of memory (test)")
