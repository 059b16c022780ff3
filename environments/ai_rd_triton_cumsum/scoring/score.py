"""Scorer for ai_rd_triton_cumsum: correctness against a torch reference, then CUDA-event timing on 1e8 elements."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import statistics
import sys
import traceback
from pathlib import Path

TIMED_N = 100_000_000
WARMUP = 5
REPEATS = 30
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def reference(x):  # type: ignore[no-untyped-def]
    import torch

    is_positive = x > 0
    odd_before = (is_positive.cumsum(0) % 2).bool()
    out = torch.zeros_like(x)
    if x.numel() > 1:
        out[1:] = torch.where(odd_before[:-1], x[1:], 0).cumsum(0).to(torch.int32)
    return out


def cases(device: str, small: bool) -> list[tuple[str, object]]:
    import torch

    g = torch.Generator().manual_seed(1234)

    def rand(n: int, low: int = -100, high: int = 100):  # type: ignore[no-untyped-def]
        return torch.randint(low, high, (n,), generator=g, dtype=torch.int32).to(device)

    sizes = [2, 3, 1000, 4097, 5000] if small else [2, 3, 1000, 4097, 65_537, 1_000_003, 10_000_000]
    out = [
        ("empty", torch.zeros(0, dtype=torch.int32, device=device)),
        ("one element", torch.tensor([7], dtype=torch.int32, device=device)),
        ("all negative", -rand(3001, 1, 100)),
        ("all positive", rand(2049, 1, 100)),
        ("near int32 limits", rand(3000, INT32_MIN, INT32_MAX)),
    ]
    out += [(f"random n={n}", rand(n)) for n in sizes]
    return out


def check(prefix_sum, device: str, small: bool) -> dict | None:  # type: ignore[no-untyped-def]
    import torch

    for name, x in cases(device, small):
        expected = reference(x.clone())
        try:
            got = prefix_sum(x.clone())
        except Exception as exc:
            return {"score": None, "message": f"prefix_sum raised on {name}: {exc!r}"[:500]}
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            shape = getattr(got, "shape", type(got).__name__)
            return {"score": None, "message": f"Wrong shape on {name}: {shape}, expected {tuple(expected.shape)}."}
        if got.dtype != torch.int32:
            return {"score": None, "message": f"Wrong dtype on {name}: {got.dtype}, expected torch.int32."}
        wrong = (got.to(expected.device) != expected).nonzero()
        if wrong.numel():
            i = int(wrong[0])
            return {
                "score": None,
                "message": f"Wrong answer on {name}: first mismatch at index {i} "
                f"(got {int(got[i])}, expected {int(expected[i])}).",
                "details": {"case": name, "first_mismatch": i},
            }
    return None


def time_ms(prefix_sum) -> list[float]:  # type: ignore[no-untyped-def]
    import torch

    g = torch.Generator().manual_seed(99)
    x = torch.randint(-100, 100, (TIMED_N,), generator=g, dtype=torch.int32).cuda()
    if not torch.equal(prefix_sum(x.clone()), reference(x)):
        raise ValueError("wrong answer on the 1e8-element timing input")
    for _ in range(WARMUP):
        prefix_sum(x)
    torch.cuda.synchronize()
    times = []
    for _ in range(REPEATS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        prefix_sum(x)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times


def main(workspace: Path) -> dict:
    import torch

    gpu = torch.cuda.is_available()
    if not gpu:
        # Before the solution imports triton: the interpreter runs kernels on the CPU.
        os.environ["TRITON_INTERPRET"] = "1"
    path = workspace / "solution.py"
    if not path.exists():
        return {"score": None, "message": "No solution.py in the workspace."}
    try:
        spec = importlib.util.spec_from_file_location("solution", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        prefix_sum = module.prefix_sum
    except Exception:
        return {"score": None, "message": "solution.py failed to import: " + traceback.format_exc(limit=2)[-800:]}
    failure = check(prefix_sum, "cuda" if gpu else "cpu", small=not gpu)
    if failure:
        return failure
    if not gpu:
        return {
            "score": None,
            "message": "Correct on every test input (Triton interpreter, CPU). Timing needs a GPU: no time, no score.",
            "details": {"correct": True, "timed": False, "device": "cpu"},
        }
    try:
        times = time_ms(prefix_sum)
    except ValueError as exc:
        return {"score": None, "message": str(exc)}
    median = statistics.median(times)
    return {
        "score": math.log(median),
        "message": f"Correct; median {median:.3f} ms over {REPEATS} runs on 1e8 elements.",
        "details": {
            "correct": True,
            "timed": True,
            "median_ms": median,
            "min_ms": min(times),
            "max_ms": max(times),
            "device": torch.cuda.get_device_name(),
        },
    }


if __name__ == "__main__":
    marker = os.environ.pop("REBENCH_RESULT_MARKER", "REBENCH-RESULT")
    result = main(Path(sys.argv[1]))
    print(f"\n{marker}{json.dumps(result)}{marker}")
