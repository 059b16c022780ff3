"""The FLOP counter: what one training run of this task's model costs, and the task's two limits.

`python flops.py N_EMBD MAX_ITERS` prints a run's FLOPs, its share of the final run's budget and
whether it is within the limit for one experiment. train.py counts every run with `flops()` and
refuses one over the experiment limit.

The count is RE-Bench's: 6 FLOPs per parameter per token (forward and backward), with the
n_layer · 12 · n_embd² parameters of the transformer's blocks (attention and MLP; embeddings are
not counted), over block_size · batch_size tokens per iteration.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

EXPERIMENT = json.loads((Path(__file__).resolve().parent / "experiment.json").read_text())
MODEL: dict[str, Any] = EXPERIMENT["model"]
# The final run's budget (the answer's run may use up to `budget_slack` times it) and the most one
# experiment of yours may use.
BUDGET_FLOPS = float(EXPERIMENT["budget_flops"])
BUDGET_SLACK = float(EXPERIMENT["budget_slack"])
EXPERIMENT_LIMIT_FLOPS = float(EXPERIMENT["experiment_limit_flops"])


def flops(n_embd: float, max_iters: float) -> float:
    """FLOPs of training the model n_embd wide for max_iters iterations."""
    tokens_per_iter = MODEL["block_size"] * MODEL["batch_size"]
    return MODEL["n_layer"] * 12 * n_embd**2 * 6 * tokens_per_iter * max_iters


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python flops.py N_EMBD MAX_ITERS", file=sys.stderr)
        return 2
    used = flops(float(argv[0]), float(argv[1]))
    print(
        f"{used:.4g} FLOPs: {used / BUDGET_FLOPS:.2%} of the final run's budget ({BUDGET_FLOPS:.3g}); "
        f"{'within' if used <= EXPERIMENT_LIMIT_FLOPS else 'OVER'} the limit of one experiment "
        f"({EXPERIMENT_LIMIT_FLOPS:.3g})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
