"""ai_rd_nanogpt_chat_rl, shared by start and scorer: the configuration, the base model, the prompts."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the protected copy holds common/ and chat.py beside this file

import chat  # noqa: E402 - after the path, with the rest
import torch  # noqa: E402
from common import corpus, nanogpt  # noqa: E402

HELDOUT = HERE / "prompts_heldout.jsonl"


def configuration(path: Path | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((path or HERE / "configuration.json").read_text())
    return doc


def setup_threads(params: dict[str, Any]) -> None:
    # Tiny models on a shared CPU run fastest on one thread; 0 keeps torch's default.
    if params.get("threads"):
        torch.set_num_threads(int(params["threads"]))


def base_model_path(doc: dict[str, Any], *, build: bool = False) -> Path:
    """Full scale: the configured base checkpoint; small: a tiny GPT trained on the offline corpus, cached.

    Start builds it (`build=True`) and keeps it as `base_model.pth` in the configuration's cache; the
    scorer only reads that file and never trains: it scores the model start prepared, whatever its
    own process's threads or CPU kernels would have made of the training.
    """
    if doc["paths"].get("base_model"):
        return Path(doc["paths"]["base_model"])
    kept = Path(doc["cache_dir"]) / "base_model.pth"
    if not build:
        return kept
    params = doc["params"]
    data = corpus.build(doc["cache_dir"], max_bytes=int(params.get("corpus_max_bytes", 4_000_000)))
    train = params["train"]
    trained = nanogpt.train_cached(
        doc["cache_dir"],
        nanogpt.GPTConfig(**params["model"]),
        data.train_bin,
        steps=int(train["steps"]),
        batch_size=int(train["batch_size"]),
        lr=float(train["lr"]),
        seed=int(train.get("seed", 0)),
    )
    if not kept.exists():
        partial = kept.with_name(f".{kept.name}.{os.getpid()}.tmp")
        shutil.copy2(trained, partial)
        os.replace(partial, kept)  # two starts at once: each writes a whole file, the last rename wins
    return kept


def chat_settings(doc: dict[str, Any]) -> dict[str, Any]:
    """How the scorer has the model chat: the workspace's chat.json (chat.py's defaults there)."""
    params = doc["params"]
    given = {key: params.get(key) for key in chat.DEFAULTS}
    return {
        key: type(default)(default if given[key] in (None, "") else given[key])
        for key, default in chat.DEFAULTS.items()
    }


def questions(path: Path) -> list[str]:
    """One JSON object with a "question" per line."""
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not row["question"].strip():
            raise ValueError(f"{path}:{number} has no question.")
        out.append(row["question"])
    return out


def heldout_questions(doc: dict[str, Any]) -> list[str]:
    return questions(Path(doc["paths"]["prompts"]) if doc["paths"].get("prompts") else HELDOUT)


@dataclass(frozen=True)
class Baseline:
    """A model the policy's answers are compared with (`model` None: the base; `temperature` None: the policy's)."""

    name: str
    model: Path | None
    temperature: float | None


def baselines(doc: dict[str, Any]) -> list[Baseline]:
    """The configuration's `baselines`: each names `base_model` or one of the configuration's paths (a checkpoint)."""
    listed = doc["params"].get("baselines") or [{"name": "base"}, {"name": "base_t1", "temperature": 1.0}]
    out = []
    for entry in listed:
        source = str(entry.get("model") or "base_model")
        if source == "base_model":
            model = None
        elif doc["paths"].get(source):
            model = Path(doc["paths"][source])
        else:
            name = entry["name"]
            raise ValueError(f"The baseline {name!r} names {source!r}, which is not one of the configuration's paths.")
        temperature = entry.get("temperature")
        out.append(Baseline(str(entry["name"]), model, None if temperature is None else float(temperature)))
    return out
