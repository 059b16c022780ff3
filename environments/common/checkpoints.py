"""Loading an expert's checkpoint safely: `torch.load(weights_only=True)` and a clear reason when it won't do.

Pickled code (any global beyond tensors and plain containers) is refused before it runs; a file
that is neither torch.save's zip format nor a pickle is "not a checkpoint".
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

PICKLE_PROTOCOL_2_PLUS = 0x80


def load(path: Path, name: str | None = None) -> tuple[Any, str]:
    """(the loaded object, "") or (None, why)."""
    name = name or path.name
    with path.open("rb") as handle:
        head = handle.read(1)
    if not zipfile.is_zipfile(path) and head != bytes([PICKLE_PROTOCOL_2_PLUS]):
        return None, f"{name} is not a checkpoint torch can read (neither torch.save's zip format nor a pickle)."
    try:
        return torch.load(path, map_location="cpu", weights_only=True), ""
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = re.search(r"GLOBAL (\S+)", text)
        if found:
            return None, f"{name} holds pickled code or objects ({found.group(1)}), not only tensors: refused unread."
        reason = next((line for line in text.splitlines() if line.startswith("Unsupported")), "")
        return None, f"{name} is a pickle torch's safe loader (weights_only) refuses, unread: {reason or text[:200]}"
    except Exception as exc:
        return None, f"{name} is not a checkpoint torch can read: {type(exc).__name__}: {str(exc)[:200]}"


def state_dict(path: Path, name: str | None = None) -> tuple[dict[str, torch.Tensor] | None, str]:
    """A state_dict (names → tensors), also from this project's {"config", "model"} layout."""
    data, why = load(path, name)
    if data is None:
        return None, why
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        return None, f"{name or path.name} must hold a state_dict (parameter names → tensors)."
    return data, ""


# The weight files of a Hugging Face-style checkpoint folder (the rest: config, tokenizer, index).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def folder_state_dict(folder: Path, name: str) -> tuple[dict[str, torch.Tensor] | None, str]:
    """One state_dict from a checkpoint folder's weight files (shards merged), or (None, why).

    Safetensors files are read with safetensors' own loader (no code can be in them); the others as
    `state_dict` reads a file (torch.load, weights only). A parameter in two shards is refused.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    if not files:
        return None, f"{name} holds no weight files ({', '.join(WEIGHT_SUFFIXES)})."
    merged: dict[str, torch.Tensor] = {}
    for path in files:
        label = f"{name}/{path.name}"
        if path.name.endswith(".safetensors"):
            try:
                part: dict[str, torch.Tensor] | None = load_file(path, device="cpu")
            except (SafetensorError, OSError, ValueError) as exc:
                return None, f"{label} is not a safetensors file: {str(exc)[:200]}"
        else:
            part, why = state_dict(path, label)
            if part is None:
                return None, why
        assert part is not None
        twice = sorted(set(part) & set(merged))
        if twice:
            return None, f"{label} repeats parameters of another shard: {twice[:5]}."
        merged.update(part)
    return merged, ""


def weights(path: Path, name: str) -> tuple[dict[str, torch.Tensor] | None, str]:
    """A checkpoint's state_dict, whichever it is: one file (`state_dict`) or a folder (`folder_state_dict`)."""
    return folder_state_dict(path, name) if path.is_dir() else state_dict(path, name)
