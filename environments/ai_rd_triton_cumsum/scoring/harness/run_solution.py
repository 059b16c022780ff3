"""The triton harness: runs the workspace's `prefix_sum` on the scorer's inputs, in the sandbox, as the expert's user.

The trusted scorer wrote /run/rebench/in: plan.json (the device, the cases, the timing seed) and one
input-NN.npy per case. This imports /home/agent/solution.py, runs `prefix_sum` on each input and
writes each output to /run/rebench/out as .npy; status.json says what went wrong where there is no
output (an exception, something that is not a tensor). On a GPU it then times `prefix_sum` on a
1e8-element input drawn from the plan's seed (fresh each run, so no answer can be precomputed) and
writes the times and the last timed run's output.

This is the expert's process: what it writes is checked by the scorer (every output against its own
reference), and status.json only explains failures. The timing is measured here, beside the
solution, so it is self-reported.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

# `run_solution.py INPUTS OUTPUTS WORKSPACE`: /run/rebench/in, /run/rebench/out and /home/agent in the
# sandbox; a local, unsandboxed run for a measurement names its own folders in their place.
INPUTS, OUTPUTS, WORKSPACE = (Path(arg) for arg in sys.argv[1:4])
TIMED = "timed"

status: dict[str, Any] = {"cases": {}}


def save_status() -> None:
    (OUTPUTS / "status.json").write_text(json.dumps(status))


def write(name: str, value: Any, path: Path) -> None:
    """The output as a .npy of its own dtype, or a word in status.json on why there is none."""
    import numpy as np
    import torch

    if not isinstance(value, torch.Tensor):
        status["cases"][name] = {"returned": type(value).__name__}
        return
    try:
        array = value.detach().cpu().numpy()
    except (TypeError, RuntimeError):  # bfloat16 and other dtypes NumPy has no name for
        status["cases"][name] = {"dtype": str(value.dtype)}
        return
    np.save(path, array)


def load_solution() -> Any:
    path = WORKSPACE / "solution.py"
    if not path.is_file():
        status["missing"] = "solution.py"
        return None
    sys.path.insert(0, str(WORKSPACE))  # the solution may import its own modules
    try:
        spec = importlib.util.spec_from_file_location("solution", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.prefix_sum
    except Exception:
        status["import_error"] = traceback.format_exc(limit=2)[-800:]
        return None


def time_solution(prefix_sum: Any, plan: dict[str, Any]) -> None:
    """Warm-up, then `repeats` runs timed with CUDA events, each on a fresh copy of the input (copied untimed)."""
    import torch

    n, seed = int(plan["timed_n"]), int(plan["timed_seed"])
    x = torch.randint(-100, 100, (n,), generator=torch.Generator().manual_seed(seed), dtype=torch.int32).cuda()
    times, got = [], None
    try:
        for _ in range(int(plan["warmup"])):
            prefix_sum(x.clone())
        torch.cuda.synchronize()
        for _ in range(int(plan["repeats"])):
            y = x.clone()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            got = prefix_sum(y)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    except Exception as exc:
        status["cases"][TIMED] = {"raised": repr(exc)[:400]}
        return
    status["times_ms"] = times
    write(TIMED, got, OUTPUTS / f"{TIMED}.npy")


def main() -> None:
    plan = json.loads((INPUTS / "plan.json").read_text())
    device = plan["device"]
    if device == "cpu":
        # Before the solution imports triton: the interpreter runs kernels on the CPU.
        os.environ["TRITON_INTERPRET"] = "1"
    import numpy as np
    import torch

    prefix_sum = load_solution()
    if prefix_sum is None:
        return
    for case in plan["cases"]:
        x = torch.from_numpy(np.load(INPUTS / case["input"], allow_pickle=False)).to(device)
        try:
            got = prefix_sum(x.clone())
            if device == "cuda":
                torch.cuda.synchronize()
        except Exception as exc:
            status["cases"][case["name"]] = {"raised": repr(exc)[:400]}
            return
        write(case["name"], got, OUTPUTS / case["output"])
        save_status()
    if plan.get("timed_seed") is not None:
        time_solution(prefix_sum, plan)


if __name__ == "__main__":
    try:
        main()
    finally:
        save_status()
