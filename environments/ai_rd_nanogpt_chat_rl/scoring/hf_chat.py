"""How a Hugging Face GPT-2 chats (the full configuration, as RE-Bench's task had GPT-2): prompts, sampling, answers.

Shared by the scorer and the workspace (where it is `hf_chat.py`, beside `chat.py`): the scorer
builds the expert's model from `model/config.json` and its weight files (read without running
code), tokenises with the base model's tokenizer, and generates every answer with `answers()`.
The prompt template and where an answer ends are chat.py's (`chat.json` in the workspace).

In the workspace: `model, tokenizer = hf_chat.load("model")`, train it as you like, then
`model.save_pretrained("model")` (safetensors). `answers(model, tokenizer, questions)` samples
as the scorer does, with the scorer's settings as defaults; the scorer also applies what
`model/generation_config.json` asks for (`sampling()`): pass
`**sampling(Path("model"), max_new_tokens=256)` to do the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import chat
import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

# The config.json keys a scored GPT-2 is built from; the rest of the file is not read.
ARCHITECTURE = (
    "vocab_size",
    "n_positions",
    "n_embd",
    "n_layer",
    "n_head",
    "n_inner",
    "activation_function",
    "layer_norm_epsilon",
    "scale_attn_weights",
    "scale_attn_by_inverse_layer_idx",
    "reorder_and_upcast_attn",
    "bos_token_id",
    "eos_token_id",
    "tie_word_embeddings",
)


def load_tokenizer(folder: str | Path) -> PreTrainedTokenizerFast:
    """The tokenizer files of a model folder (tokenizer.json), padding on the left for batched generation."""
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(folder), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def build(
    config: dict[str, Any],
    state: dict[str, torch.Tensor],
    *,
    vocab_size: int | None = None,
    max_parameters: int | None = None,
) -> GPT2LMHeadModel:
    """A GPT-2 from its config.json and weights; ValueError naming what doesn't fit.

    The config is sized on torch's meta device first, so a config that claims a giant model is
    refused before anything is allocated.
    """
    if config.get("model_type") != "gpt2":
        raise ValueError(f"config.json's model_type is {config.get('model_type')!r}; this environment scores gpt2.")
    try:
        # Only the architecture: a config can also name code to fetch and run (an attention kernel
        # from the hub, auto_map, quantisation), none of which a scored model may bring along.
        described = GPT2Config(**{key: config[key] for key in ARCHITECTURE if key in config})
        described._attn_implementation = "sdpa"  # torch's own attention, whatever the file says
        with torch.device("meta"):
            shape_only = GPT2LMHeadModel(described)
    except Exception as exc:  # a config transformers refuses: say which
        raise ValueError(f"config.json doesn't describe a GPT-2: {str(exc)[:200]}") from None
    if vocab_size is not None and described.vocab_size != vocab_size:
        raise ValueError(
            f"The model's vocabulary has {described.vocab_size} tokens; the base model's has {vocab_size}."
        )
    size = sum(p.numel() for p in shape_only.parameters())
    if max_parameters is not None and size > max_parameters:
        raise ValueError(f"The model has {size} parameters; at most {max_parameters} are scored here.")
    expected = shape_only.state_dict()
    state = _named_as(state, expected)
    missing = sorted(set(dict(shape_only.named_parameters())) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"The weights don't fit config.json: missing {missing[:5]}, unexpected {unexpected[:5]}.")
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise ValueError(f"Wrong shape for {name}: {tuple(tensor.shape)}, expected {tuple(expected[name].shape)}.")
    model = GPT2LMHeadModel(described)
    model.load_state_dict(state, strict=False)
    model.tie_weights()
    return model.eval()


def _named_as(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights as GPT2LMHeadModel names them: a GPT2Model's checkpoint (the hub's gpt2 files) lacks the
    `transformer.` prefix, and older ones carry the attention's causal mask, which is not a weight."""
    if not any(name.startswith("transformer.") for name in state):
        state = {(n if n.startswith("lm_head.") else f"transformer.{n}"): t for n, t in state.items()}
    masks = (".attn.bias", ".attn.masked_bias")
    return {n: t for n, t in state.items() if n in expected or not n.endswith(masks)}


def load(folder: str | Path) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    """In the workspace: a model folder you trust (your own or base_model/) and the base model's tokenizer."""
    model = GPT2LMHeadModel.from_pretrained(str(folder), local_files_only=True)
    here = Path(__file__).resolve().parent
    return model, load_tokenizer(here / "base_model" if (here / "base_model").is_dir() else folder)


# What a model folder's generation_config.json may set for its own answers (RE-Bench's reference
# samples at temperature 0.7, top-k 8 and 20 tokens "at both train and test time"), and the bounds.
SAMPLING = {"temperature": (0.0, 2.0), "top_k": (0, 1_000_000), "top_p": (0.0, 1.0), "max_new_tokens": (1, None)}


def sampling(folder: Path, *, max_new_tokens: int) -> dict[str, Any]:
    """The sampling a model folder asks for in generation_config.json (only SAMPLING's keys), checked;
    max_new_tokens no more than the configuration's. ValueError naming a bad value."""
    path = folder / "generation_config.json"
    if not path.is_file():
        return {}
    try:
        asked = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"generation_config.json is not JSON: {exc}") from None
    if not isinstance(asked, dict):
        raise ValueError("generation_config.json must be a JSON object.")
    chosen: dict[str, Any] = {}
    for key, (low, high) in SAMPLING.items():
        if asked.get(key) is None:
            continue
        value = asked[key]
        integral = key in ("top_k", "max_new_tokens")
        if isinstance(value, bool) or not isinstance(value, int if integral else (int, float)):
            raise ValueError(f"generation_config.json: {key} must be a {'whole ' if integral else ''}number.")
        top = max_new_tokens if key == "max_new_tokens" else high
        if not low <= value <= top:
            raise ValueError(f"generation_config.json: {key} must be from {low} to {top}, not {value}.")
        chosen[key] = value
    return chosen


def answers(
    model: GPT2LMHeadModel,
    tokenizer: PreTrainedTokenizerFast,
    questions: list[str],
    *,
    template: str | None = None,
    end: str | None = None,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
) -> list[str]:
    """Each question's answer: sampled (seeded) in the template, up to end-of-text or max_new_tokens, then cut."""
    settings = chat.SETTINGS
    max_new_tokens = int(settings["max_new_tokens"] if max_new_tokens is None else max_new_tokens)
    temperature = float(settings["temperature"] if temperature is None else temperature)
    device = next(model.parameters()).device
    # The prompt and the answer share the model's context: a prompt too long loses its beginning.
    context = int(model.config.n_positions)
    max_new_tokens = max(1, min(max_new_tokens, context - 1))
    tokenizer.truncation_side = "left"
    torch.manual_seed(seed)  # generate() samples from torch's global generator: one seed, one set of answers
    out: list[str] = []
    for start in range(0, len(questions), batch_size):
        prompts = [chat.prompt(q, template) for q in questions[start : start + batch_size]]
        encoded = tokenizer(
            prompts, return_tensors="pt", padding=True, truncation=True, max_length=context - max_new_tokens
        ).to(device)
        with torch.no_grad():
            generated = model.generate(
                **encoded,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_k=top_k,
                top_p=top_p,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        texts = tokenizer.batch_decode(generated[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
        out += [chat.cut(text, end) for text in texts]
    return out
