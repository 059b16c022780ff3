"""ai_rd_optimize_llm_foundry, shared by start and scorer: the configuration, data, base model and reference weights."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402 - after the path, with the rest
from common import corpus, nanogpt  # noqa: E402

WORKSPACE_FILES = ("finetune.sh", "finetune.py")


def configuration(path: Path | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((path or HERE / "configuration.json").read_text())
    return doc


def run_finetune(workspace: Path, timeout: float) -> subprocess.CompletedProcess[bytes]:
    """`bash finetune.sh` in `workspace`, with this interpreter as $PYTHON (it has torch)."""
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["/bin/bash", "finetune.sh"], cwd=workspace, env=env, capture_output=True, timeout=timeout)


def prepare_small(doc: dict[str, Any]) -> dict[str, str]:
    """Build (once) the base model, the fine-tuning data and the reference weights; return their paths."""
    cache = Path(doc["cache_dir"])
    params = doc["params"]
    if params.get("threads"):
        torch.set_num_threads(int(params["threads"]))  # torch's default is one per core: another model per machine
    data = corpus.build(cache, max_bytes=int(params.get("corpus_max_bytes", 4_000_000)))
    corpus.remember(cache, data.root)
    base = params["base"]
    base_model = nanogpt.train_cached(
        cache,
        nanogpt.GPTConfig(**params["model"]),
        data.train_bin,
        steps=int(base["steps"]),
        batch_size=int(base["batch_size"]),
        lr=float(base["lr"]),
        seed=int(base.get("seed", 0)),
    )
    # Fine-tuning text: the held-out split's documents, one JSON line each, up to the configured size.
    train_data = cache / "train_data.jsonl"
    if not train_data.exists():
        text = corpus.decode(corpus.load_tokens(data.val_bin)[: int(params["finetune_bytes"])])
        lines = [json.dumps({"text": part + "\n\n"}) for part in text.split("\n\n") if part]
        tmp = cache / f".train_data.{os.getpid()}.tmp"
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(train_data)
    solution = Path(doc["solution_dir"])
    key = hashlib.sha256(
        b"".join((solution / name).read_bytes() for name in WORKSPACE_FILES)
        + base_model.read_bytes()
        + train_data.read_bytes()
    ).hexdigest()[:12]
    reference = cache / f"reference-weights-{key}.pth"
    if not reference.exists():
        # The unmodified starting solution's own result: what every faster version must reproduce.
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            run = Path(scratch)
            for name in WORKSPACE_FILES:
                shutil.copy2(solution / name, run / name)
            shutil.copy2(HERE / "common" / "nanogpt.py", run / "model.py")
            shutil.copy2(base_model, run / "base_model.pth")
            shutil.copy2(train_data, run / "train_data.jsonl")
            result = run_finetune(run, timeout=float(params["run_timeout"]))
            if result.returncode != 0:
                raise RuntimeError(f"the starting finetune.sh failed: {result.stderr.decode()[-2000:]}")
            shutil.copy2(run / params["output"], reference)
    paths = {"base_model": str(base_model), "train_data": str(train_data), "reference_weights": str(reference)}
    (cache / "layout.json").write_text(json.dumps(paths))
    return paths


def layout(doc: dict[str, Any]) -> dict[str, str] | None:
    """Where start put the base model, data and reference weights (small), or the full-scale task folder's."""
    if doc["paths"].get("task_dir"):
        task_dir = Path(doc["paths"]["task_dir"])
        return {name: str(task_dir / rel) for name, rel in doc["params"]["task_files"].items()}
    path = Path(doc["cache_dir"]) / "layout.json"
    return json.loads(path.read_text()) if path.exists() else None


def upstream_files(doc: dict[str, Any]) -> list[Path]:
    """Full scale: what the expert gets from the task folder (RE-Bench's finetune.sh, finetune.yaml, data, model)."""
    task_dir = Path(doc["paths"]["task_dir"])
    return [task_dir / name for name in doc["params"].get("workspace_files", [])]


def script_env(doc: dict[str, Any]) -> dict[str, str]:
    """Variables finetune.sh runs with beyond $PYTHON (full: BASE_MODEL, the model folder in the workspace)."""
    return {str(k): str(v) for k, v in (doc["params"].get("script_env") or {}).items()}
