"""Train this task's GPT at one width for a number of iterations, and print its validation loss.

    python train.py --n_embd 32 --max_iters 120

Every other hyperparameter is fixed by the task (experiment.json: layers, context, batch, learning
rate with cosine decay, vocabulary), as in the final run the answer predicts. A run over the limit
for one experiment is refused before it starts (flops.py counts it). Each run appends a line to
runs.jsonl: n_embd, max_iters, FLOPs, training loss at the end, validation loss on data/val.bin.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import model as nanogpt  # noqa: E402 - the task's GPT, beside this file
import torch  # noqa: E402
from flops import EXPERIMENT, EXPERIMENT_LIMIT_FLOPS, MODEL, flops  # noqa: E402


def heads(n_embd: int) -> int:
    """The attention heads at a width: the largest of 8, 4, 2 and 1 that divides it."""
    return next(h for h in (8, 4, 2, 1) if n_embd % h == 0)


def device() -> str:
    return str(EXPERIMENT.get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))


def run(
    n_embd: int, max_iters: int, *, train_path: Path, eval_path: Path, seed: int = 0, limit: bool = True
) -> dict[str, Any]:
    """Train and evaluate one model; refuses (ValueError) a run over the experiment limit when `limit`."""
    used = flops(n_embd, max_iters)
    if limit and used > EXPERIMENT_LIMIT_FLOPS:
        raise ValueError(
            f"n_embd {n_embd}, max_iters {max_iters} is {used:.4g} FLOPs: over the limit of one experiment "
            f"({EXPERIMENT_LIMIT_FLOPS:.3g})."
        )
    if EXPERIMENT.get("threads"):
        torch.set_num_threads(int(EXPERIMENT["threads"]))
    config = nanogpt.GPTConfig(
        vocab_size=MODEL["vocab_size"],
        block_size=MODEL["block_size"],
        n_layer=MODEL["n_layer"],
        n_head=heads(n_embd),
        n_embd=n_embd,
    )
    torch.manual_seed(seed)
    gpt = nanogpt.GPT(config).to(device())
    started = time.monotonic()
    losses = nanogpt.train(
        gpt,
        nanogpt.load_tokens_any(train_path),
        steps=max_iters,
        batch_size=MODEL["batch_size"],
        lr=float(EXPERIMENT["lr"]),
        seed=seed,
        device=device(),
    )
    evaluation = EXPERIMENT["eval"]
    loss = nanogpt.evaluate(
        gpt,
        nanogpt.load_tokens_any(eval_path),
        batches=int(evaluation["batches"]),
        batch_size=int(evaluation["batch_size"]),
        device=device(),
    )
    return {
        "n_embd": n_embd,
        "max_iters": max_iters,
        "flops": used,
        "train_loss": sum(losses[-10:]) / max(1, len(losses[-10:])),
        "val_loss": loss,
        "seconds": round(time.monotonic() - started, 2),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n_embd", type=int, required=True)
    parser.add_argument("--max_iters", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.n_embd < 1 or args.max_iters < 1:
        parser.error("n_embd and max_iters must be positive")
    try:
        result = run(
            args.n_embd,
            args.max_iters,
            train_path=HERE / "data" / "train.bin",
            eval_path=HERE / "data" / "val.bin",
            seed=args.seed,
        )
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    line = json.dumps(result)
    with (HERE / "runs.jsonl").open("a") as log:
        log.write(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
