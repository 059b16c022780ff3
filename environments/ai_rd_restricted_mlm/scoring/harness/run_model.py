"""The restricted-MLM harness: runs the workspace's model on the masked inputs, in the sandbox, as the expert's user.

The trusted scorer wrote /run/rebench/in: inputs.npy (batches of token ids, masked positions already
replaced by the mask id), masks.npy (where they are), params.json (sizes, threads, the logits'
dtype) and this code. This builds `Model()` from /home/agent/model.py, loads /home/agent/model.pth
with `torch.load(weights_only=True)`, runs each batch's forward pass under `Restricted()` and writes
the logits at the masked positions to /run/rebench/out/logits-NNNN.npy. status.json says what went
wrong (a missing file, a forbidden op, an exception, a wrong shape).

This is the expert's process: the scorer checks every file it returns and computes the loss itself;
status.json only explains failures.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# `run_model.py INPUTS OUTPUTS WORKSPACE`: /run/rebench/in, /run/rebench/out and /home/agent in the
# sandbox; a local, unsandboxed run for a measurement names its own folders in their place.
INPUTS, OUTPUTS, WORKSPACE = (Path(arg) for arg in sys.argv[1:4])
FLOAT16_LOWEST = -65504.0

status: dict[str, Any] = {}


def save_status() -> None:
    (OUTPUTS / "status.json").write_text(json.dumps(status))


def load_model() -> Any:
    """Model() with model.pth loaded, or None with the reason in status."""
    import checkpoints

    sys.path.insert(0, str(WORKSPACE))  # model.py may import its own modules
    try:
        spec = importlib.util.spec_from_file_location("model", WORKSPACE / "model.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.Model()
    except Exception:
        status["build"] = traceback.format_exc(limit=2)[-600:]
        return None
    state, why = checkpoints.state_dict(WORKSPACE / "model.pth")
    if state is None:
        status["checkpoint"] = why
        return None
    try:
        model.load_state_dict(state)
    except Exception as exc:
        status["fit"] = str(exc)[:400]
        return None
    return model.eval()


def main() -> None:
    params = json.loads((INPUTS / "params.json").read_text())
    import numpy as np
    import torch
    from restricted import ForbiddenOperation, Restricted

    if params.get("threads"):
        torch.set_num_threads(int(params["threads"]))
    for name in ("model.py", "model.pth"):
        if not (WORKSPACE / name).is_file():
            status["missing"] = name
            return
    model = load_model()
    if model is None:
        return
    device = params.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    vocab, half = int(params["vocab_size"]), params["logits_dtype"] == "float16"
    inputs = np.load(INPUTS / "inputs.npy", allow_pickle=False)
    masks = np.load(INPUTS / "masks.npy", allow_pickle=False)
    for i in range(len(inputs)):
        tokens = torch.from_numpy(inputs[i]).to(device)
        masked = torch.from_numpy(masks[i]).to(device)
        try:
            with torch.no_grad(), Restricted() as guard:
                logits = model(tokens)
        except ForbiddenOperation as exc:
            status["forbidden"] = {"op": exc.op, "why": exc.why}
            return
        except Exception:
            status["raised"] = traceback.format_exc(limit=2)[-600:]
            return
        if not guard.checked:
            status["unchecked"] = True
            return
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (*tokens.shape, vocab):
            status["shape"] = [int(v) for v in getattr(logits, "shape", ())]
            return
        picked = logits.detach().float()[masked]
        if half and picked.shape[0]:
            # Cross-entropy doesn't change with a shift per row: spend float16's precision near each row's top.
            picked = (picked - picked.max(dim=-1, keepdim=True).values).clamp(min=FLOAT16_LOWEST).half()
        np.save(OUTPUTS / f"logits-{i:04d}.npy", picked.cpu().numpy())
        status["batches"] = i + 1


if __name__ == "__main__":
    try:
        main()
    finally:
        save_status()
