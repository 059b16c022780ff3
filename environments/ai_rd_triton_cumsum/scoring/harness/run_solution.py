"""The triton harness: runs the workspace's `prefix_sum` on the scorer's inputs, in the sandbox, as the expert's user.

The trusted scorer wrote /run/rebench/in: plan.json (the device, the cases, the timing's size and
counts) and one input-NN.npy per case. This imports /home/agent/solution.py, runs `prefix_sum` on
each input and writes each output to /run/rebench/out as .npy; status.json says what went wrong
where there is no output (an exception, something that is not a tensor). On a GPU it then times
`prefix_sum`: warm-up calls and timed calls, each on a tensor of its own drawn here from a seed taken
from os.urandom just before the call (and outside the timed region). No input is known before its
call, and no two calls share a tensor's contents or a seed, so neither memoising on the tensor
(its pointer or its contents) nor precomputing an answer buys anything. It writes the times, each
timed call's seed and a checksum of its answer (taken after the clock stopped), and the whole output
of one timed call picked at random: the scorer draws each input again from its seed and checks every
checksum and that output against its own reference, so a stale answer in any call is a NaN.

This is the expert's process: what it writes is checked by the scorer (every output against its own
reference), and status.json only explains failures. The timing is measured here, beside the
solution, so it is self-reported.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

# `run_solution.py INPUTS OUTPUTS WORKSPACE`: /run/rebench/in, /run/rebench/out and /home/agent in the
# sandbox; a local, unsandboxed run for a measurement names its own folders in their place. The
# scorer imports this file only for `timing_input` (no arguments then).
INPUTS, OUTPUTS, WORKSPACE = (Path(arg) for arg in (sys.argv[1:4] if __name__ == "__main__" else (".", ".", ".")))
TIMED = "timed"
LOW, HIGH = -100, 100

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


def fresh_seed() -> int:
    return int.from_bytes(os.urandom(8), "little") & (2**63 - 1)


def timing_input(seed: int, n: int, device: str) -> Any:
    """The timing input drawn from `seed` on `device`; the scorer draws the same one to check the answer."""
    import torch

    generator = torch.Generator(device=device).manual_seed(seed)
    return torch.randint(LOW, HIGH, (n,), generator=generator, device=device, dtype=torch.int32)


def checksum(out: Any) -> list[int]:
    """Two sums of the answer (plain, and weighted by position): a stale or wrong answer changes them."""
    import torch

    values = out.reshape(-1).to(torch.int64)
    weights = torch.arange(values.numel(), device=values.device, dtype=torch.int64) % 65521 + 1
    return [int(values.sum()), int((values * weights).sum())]


def timed_call(prefix_sum: Any, x: Any, device: str) -> tuple[float, Any]:
    """One call's milliseconds: CUDA events on a GPU, the wall clock on the CPU (a local run's stand-in)."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()  # the input's drawing is done before the clock starts
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        got = prefix_sum(x)
        end.record()
        end.synchronize()
        return start.elapsed_time(end), got
    began = time.perf_counter()
    got = prefix_sum(x)
    return (time.perf_counter() - began) * 1000, got


def time_solution(prefix_sum: Any, plan: dict[str, Any], device: str) -> None:
    """Warm-up, then `repeats` timed calls: each on a fresh tensor drawn (untimed) from a fresh seed."""
    import torch

    n, repeats = int(plan["timed_n"]), int(plan["repeats"])
    # Picked before the calls, known to none of them: the call whose answer the scorer checks.
    checked = int.from_bytes(os.urandom(2), "little") % repeats
    times: list[float] = []
    calls: list[dict[str, Any]] = []
    got, seed = None, None
    try:
        for _ in range(int(plan["warmup"])):
            prefix_sum(timing_input(fresh_seed(), n, device))
        for i in range(repeats):
            call_seed = fresh_seed()
            x = timing_input(call_seed, n, device)
            elapsed, out = timed_call(prefix_sum, x, device)
            times.append(elapsed)
            if i == checked:
                got, seed = out, call_seed
            if not isinstance(out, torch.Tensor) or out.shape != x.shape:
                got, seed = out, call_seed  # the output returned says what came back instead
                break
            calls.append({"seed": call_seed, "checksum": checksum(out)})
            del x, out  # the next input may reuse this memory: a pointer is no key to an answer
    except Exception as exc:
        status["cases"][TIMED] = {"raised": repr(exc)[:400]}
        return
    status["times_ms"] = times
    status["timed_calls"] = calls
    status["timed_seed"] = seed
    status["timed_call"] = checked
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
    if plan.get("timed"):
        time_solution(prefix_sum, plan, device)


if __name__ == "__main__":
    try:
        main()
    finally:
        save_status()
