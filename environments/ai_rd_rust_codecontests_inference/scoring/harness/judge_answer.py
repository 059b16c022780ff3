"""ai_rd_rust_codecontests_inference's harness: compile one answer and run it on its tests' inputs.

Usage: judge_answer.py IN OUT, where IN holds `answer.json` (rustc, the judge's limits, the number
of tests), `main.rs` and `tests/<index>.in`. Runs in a harness instance of the attempt's sandbox:
the answer is the expert's code, so it compiles and runs where the expert's user runs, without
network, the scorer's files, the key or a single expected output. judge.py (a copy of the scorer's,
with judge_sandbox.py) applies its limits to each run and, where the kernel has Landlock, lets the
program write only in its own test's folder (not the workspace, where it could leave the hidden
inputs for the expert).

Written to OUT: `<index>.out` (what the program printed) and `result.json` (a compile error, or how
each run ended). The scorer compares with the expected outputs, which never come here. Runs go on
after a wrong answer (nothing here can tell) and stop after the first that fails by itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import shutil
import sys
from pathlib import Path

import judge

PR_SET_DUMPABLE = 4


def main(inputs: Path, out: Path) -> int:
    # The answer runs as our user: it must not read or write this process's memory (its verdicts).
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    spec = json.loads((inputs / "answer.json").read_text())
    limits = judge.Limits(**spec["limits"])
    folder = judge.workdir()
    result: dict[str, object] = {"compile_error": "", "runs": [], "landlock": judge.landlock_abi()}
    try:
        binary, error = judge.compile_rust((inputs / "main.rs").read_text(), folder, rustc=spec["rustc"], limits=limits)
        if binary is None:
            result["compile_error"] = error
        else:
            runs: list[dict[str, object]] = []
            result["runs"] = runs
            for index in range(int(spec["tests"])):
                given = (inputs / "tests" / f"{index}.in").read_text()
                run, got = judge.run_one(binary, given, folder / f"test-{index}", limits=limits)
                runs.append({"returncode": run.returncode, "timed_out": run.timed_out, "stderr": run.stderr[-4000:]})
                if run.ended_badly:
                    break
                (out / f"{index}.out").write_bytes(got)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    # Written last, after every run has ended: no answer is alive to write over it.
    (out / "result.json").unlink(missing_ok=True)
    (out / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
