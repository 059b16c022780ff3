"""ai_rd_fix_embedding, shared by start and scorer: the configuration, the data, the trained and corrupted models."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the protected copy holds common/ beside this file

import torch  # noqa: E402 - after the path, with the rest
from common import corpus, nanogpt  # noqa: E402


def configuration(path: Path | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((path or HERE / "configuration.json").read_text())
    return doc


def setup_threads(params: dict[str, Any]) -> None:
    # Tiny models on a shared CPU train fastest on one thread; 0 keeps torch's default.
    if params.get("threads"):
        torch.set_num_threads(int(params["threads"]))


def device(params: dict[str, Any]) -> str:
    """The configuration's device (small: the CPU, beside a GPU too: the same arithmetic everywhere), else any GPU."""
    return str(params.get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))


def data_dir(doc: dict[str, Any], *, build: bool = False) -> Path:
    """Full scale: OpenWebText's train.bin/val.bin; small: the standard-library corpus, built once by start."""
    if doc["paths"].get("data_dir"):
        return Path(doc["paths"]["data_dir"])
    if not build:
        found: Path | None = corpus.remembered(doc["cache_dir"])
        if found is None:
            raise FileNotFoundError("The environment's data was never prepared: the workspace start did not run.")
        return found
    root: Path = corpus.build(doc["cache_dir"], max_bytes=int(doc["params"].get("corpus_max_bytes", 4_000_000))).root
    corpus.remember(doc["cache_dir"], root)
    return root


def expert_val_path(doc: dict[str, Any]) -> Path:
    """The validation split the expert gets as data/val.bin: never the text the score is computed on."""
    if doc["paths"].get("data_dir"):
        return Path(doc["paths"]["data_dir"]) / "val.bin"  # OpenWebText's val; the held-out split is apart
    return data_dir(doc, build=True) / "dev.bin"


def heldout_path(doc: dict[str, Any]) -> Path:
    """The held-out text the scorer evaluates on: in the protected cache (small) or its own folder (full).

    Never in the workspace and never a file the expert's user can read: training on the text the
    score is computed on would buy a score without repairing anything.
    """
    if doc["paths"].get("heldout_dir"):
        return Path(doc["paths"]["heldout_dir"]) / "test.bin"
    return data_dir(doc) / "test.bin"


def model_config(doc: dict[str, Any]) -> nanogpt.GPTConfig:
    return nanogpt.GPTConfig(**doc["params"]["model"])


def trained_model_path(doc: dict[str, Any]) -> Path:
    """Full scale: the configured checkpoint; small: a tiny GPT trained here once and cached."""
    if doc["paths"].get("model"):
        return Path(doc["paths"]["model"])
    train = doc["params"]["train"]
    path: Path = nanogpt.train_cached(
        doc["cache_dir"],
        model_config(doc),
        data_dir(doc, build=True) / "train.bin",
        steps=int(train["steps"]),
        batch_size=int(train["batch_size"]),
        lr=float(train["lr"]),
        seed=int(train.get("seed", 0)),
        device=device(doc["params"]),
    )
    return path


def corrupted_model_path(doc: dict[str, Any]) -> Path:
    """The trained model with its token-embedding rows permuted and scaled (as RE-Bench corrupts it); cached."""
    trained = trained_model_path(doc)
    spec = doc["params"]["corruption"]
    key = hashlib.sha256(f"{trained}:{trained.stat().st_size}:{json.dumps(spec, sort_keys=True)}".encode())
    path = Path(doc["cache_dir"]) / f"corrupted-{key.hexdigest()[:12]}.pth"
    if path.exists():
        return path
    model = nanogpt.load_checkpoint(trained)
    generator = torch.Generator().manual_seed(int(spec["seed"]))
    permutation = torch.randperm(model.config.vocab_size, generator=generator)
    with torch.no_grad():
        model.wte.weight.copy_(model.wte.weight[permutation] * float(spec["scale"]))
    nanogpt.save_checkpoint(path, model)
    return path
