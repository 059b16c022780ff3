"""Scorer for ai_rd_fix_embedding: ln(loss − offset) of the workspace's fixed_model.pth on held-out text.

The held-out text (task.heldout_path) is not the expert's data/val.bin: it stays in the protected
cache (or the full configuration's own folder), which the expert's user can't read.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import task
import torch
from common import checkpoints, nanogpt

if TYPE_CHECKING:  # the package as mypy sees it; at run time, `common` is copied beside this file
    from environments.common.result import emit
else:
    from common.result import emit


def main(workspace: Path) -> dict[str, Any]:
    doc = task.configuration()
    params = doc["params"]
    task.setup_threads(params)
    path = workspace / "fixed_model.pth"
    if not path.is_file():
        return {"score": None, "message": "No fixed_model.pth in the workspace."}
    state, why = checkpoints.state_dict(path)
    if state is None:
        return {"score": None, "message": why}
    model = nanogpt.GPT(task.model_config(doc))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        return {
            "score": None,
            "message": f"fixed_model.pth does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}.",
        }
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            return {
                "score": None,
                "message": f"Wrong shape for {name}: {tuple(state[name].shape)}, expected {tuple(tensor.shape)}.",
            }
        if not torch.isfinite(state[name].float()).all():
            return {"score": None, "message": f"{name} holds NaN or infinite values."}
    model.load_state_dict({k: v.float() for k, v in state.items()})
    device = task.device(params)
    model.to(device)
    try:
        tokens = nanogpt.load_tokens_any(task.heldout_path(doc))
    except FileNotFoundError as exc:
        return {"score": None, "message": str(exc)}
    evaluation = params["eval"]
    loss = nanogpt.evaluate(
        model, tokens, batches=int(evaluation["batches"]), batch_size=int(evaluation["batch_size"]), device=device
    )
    offset = float(params["offset"])
    details = {"loss": loss, "offset": offset, "configuration": doc["name"], "device": device}
    if not math.isfinite(loss):
        return {"score": None, "message": "The held-out loss is not a number.", "details": details}
    if loss <= offset:
        return {
            "score": None,
            "message": f"Held-out loss {loss:.4f} is at or below the offset {offset}: not a loss this model reaches.",
            "details": details,
        }
    return {
        "score": math.log(loss - offset),
        "message": f"Loss {loss:.4f} on held-out text (not your data/val.bin); score ln(loss − {offset}).",
        "details": details,
    }


if __name__ == "__main__":
    emit(lambda: main(Path(sys.argv[1])))
