"""Cumsum benchmark on a GPU: the reference Triton kernel vs the torch baseline, through the real scorer.

Run on a CUDA machine: .venv/bin/python benchmarks/cumsum_scorer.py [--runs 10]
Scores the reference and the starting (torch) solution `--runs` times each with the environment's
own scorer (1e8 int32 elements, CUDA events, median after warm-up), and prints the median time,
the coefficient of variation over the runs, the ratio to the torch baseline and to RE-Bench's
reference (1.6 ms) and the ~0.27 ms memory-bandwidth floor of an H100. Without a GPU it says so
and stops: timing needs a GPU. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "environments" / "ai_rd_triton_cumsum"
MARKER = "BENCH-RESULT"
REBENCH_REFERENCE_MS = 1.6
BANDWIDTH_FLOOR_MS = 0.27


def score(solution: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workspace:
        shutil.copy(solution, Path(workspace) / "solution.py")
        env = {**os.environ, "REBENCH_RESULT_MARKER": MARKER}
        out = subprocess.run(
            [sys.executable, str(PACKAGE / "scoring" / "score.py"), workspace],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
    return json.loads(out.split(MARKER)[1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    import torch

    if not torch.cuda.is_available():
        print("No CUDA GPU here: timing needs a GPU, so there is nothing to measure.")
        return 1
    print(f"device: {torch.cuda.get_device_name()}")
    medians = {}
    for name, path in (
        ("reference", PACKAGE / "reference" / "solution.py"),
        ("torch", PACKAGE / "solution" / "solution.py"),
    ):
        times = []
        for _ in range(runs):
            result = score(path)
            if result["score"] is None:
                print(f"{name}: {result['message']}")
                return 1
            times.append(result["details"]["median_ms"])
        median = statistics.median(times)
        cv = statistics.stdev(times) / statistics.mean(times) if len(times) > 1 else 0.0
        medians[name] = median
        print(
            f"{name:9s} median {median:.3f} ms over {runs} scorings, CV {cv:.1%}, "
            f"min {min(times):.3f}, max {max(times):.3f}"
        )
    ref = medians["reference"]
    print(f"torch baseline / reference: {medians['torch'] / ref:.2f}×")
    print(f"RE-Bench reference (1.6 ms) / ours: {REBENCH_REFERENCE_MS / ref:.2f}×")
    print(f"ours / bandwidth floor ({BANDWIDTH_FLOOR_MS} ms): {ref / BANDWIDTH_FLOOR_MS:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
