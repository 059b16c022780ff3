"""A small nanoGPT-style GPT (after Karpathy's nanoGPT, MIT) with train/eval helpers and a trained-model cache.

Small enough to train on a CPU in seconds on the byte-level corpus (`corpus.py`); the same code
takes GPT-2-small sizes for the full configurations. Checkpoints are plain dicts
(`{"config": {...}, "model": state_dict}`) so they load with `torch.load(weights_only=True)`.

API: `GPTConfig`, `GPT`, `batch(tokens, ...)`, `train(model, tokens, ...)`, `evaluate(model, tokens, ...)`,
`save_checkpoint`, `load_checkpoint`, `train_cached(cache_dir, config, tokens_path, ...)`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 256
    block_size: int = 64
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64
    tie_weights: bool = False


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd), nn.GELU(), nn.Linear(4 * config.n_embd, config.n_embd)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


def batch(
    tokens: np.ndarray, block_size: int, batch_size: int, generator: torch.Generator, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows (inputs, next-token targets) drawn with `generator`: the same seed, the same batches."""
    starts = torch.randint(len(tokens) - block_size - 1, (batch_size,), generator=generator).tolist()
    x = torch.from_numpy(np.stack([tokens[s : s + block_size].astype(np.int64) for s in starts]))
    y = torch.from_numpy(np.stack([tokens[s + 1 : s + 1 + block_size].astype(np.int64) for s in starts]))
    return x.to(device), y.to(device)


def train(
    model: nn.Module,
    tokens: np.ndarray,
    *,
    steps: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    parameters: list[nn.Parameter] | None = None,
    device: str = "cpu",
) -> list[float]:
    """AdamW with cosine decay; deterministic for a seed on one machine. Returns the training losses."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    params = parameters if parameters is not None else [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    block_size = model.config.block_size  # type: ignore[union-attr]
    losses = []
    model.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / max(1, steps)))
        x, y = batch(tokens, block_size, batch_size, generator, device)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def evaluate(
    model: nn.Module, tokens: np.ndarray, *, batches: int = 20, batch_size: int = 32, device: str = "cpu"
) -> float:
    """Mean next-token cross-entropy (nats) over fixed, evenly spaced windows of `tokens`."""
    model.eval()
    block_size = model.config.block_size  # type: ignore[union-attr]
    count = batches * batch_size
    starts = np.linspace(0, len(tokens) - block_size - 2, count).astype(np.int64)
    total = 0.0
    for i in range(batches):
        rows = starts[i * batch_size : (i + 1) * batch_size]
        x = torch.from_numpy(np.stack([tokens[s : s + block_size].astype(np.int64) for s in rows])).to(device)
        y = torch.from_numpy(np.stack([tokens[s + 1 : s + 1 + block_size].astype(np.int64) for s in rows])).to(device)
        _, loss = model(x, y)
        total += float(loss)
    return total / batches


def save_checkpoint(path: Path | str, model: GPT) -> None:
    """Atomically: a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"config": asdict(model.config), "model": model.state_dict()}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path | str, device: str = "cpu") -> GPT:
    """Only tensors and plain containers (weights_only=True): a pickled object raises, it never runs."""
    data = torch.load(path, map_location=device, weights_only=True)
    model = GPT(GPTConfig(**data["config"]))
    model.load_state_dict(data["model"])
    return model.to(device).eval()


def train_cached(
    cache_dir: Path | str,
    config: GPTConfig,
    tokens_path: Path | str,
    *,
    steps: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    device: str = "cpu",
) -> Path:
    """Train once per (config, data, schedule) and keep the checkpoint under `cache_dir/gpt-<key>.pth`."""
    key_doc: dict[str, Any] = {
        "config": asdict(config),
        "data": str(tokens_path),
        "data_size": os.path.getsize(tokens_path),
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "torch": torch.__version__,
    }
    key = hashlib.sha256(json.dumps(key_doc, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"gpt-{key}.pth"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = GPT(config).to(device)
    train(model, load_tokens_any(tokens_path), steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device)
    save_checkpoint(path, model.cpu())
    return path


def load_tokens_any(path: Path | str) -> np.ndarray:
    return np.memmap(path, dtype=np.uint16, mode="r")
