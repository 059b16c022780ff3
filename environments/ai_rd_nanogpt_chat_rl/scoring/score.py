"""Scorer for ai_rd_nanogpt_chat_rl: the model answers held-out questions; a judge compares them with the baselines.

The expert's model is read without running any of its code: small, `model.pth` with
`torch.load(weights_only=True)` into this environment's GPT; full, the Hugging Face folder `model/`
(hf_chat.build: a GPT-2 from config.json's architecture keys alone, sized on the meta device before
anything is allocated, then its safetensors or weights-only shards). It answers every held-out
question with the scorer's own sampling settings
(temperature, seed, prompt template and answer end from the configuration). The baselines are the
configuration's: RE-Bench's are the base model and the Alpaca-finetuned model (full); the small
configuration's, the base model with the same settings and at temperature 1.0. For each question
and baseline the judge, an OpenAI-compatible endpoint (CHAT_RL_JUDGE_URL), says which answer is
better (judging.py: the words the expert's `evaluation.py` uses too); the order is shuffled with a
fixed seed, and identical answers are a tie (0.5) without asking. Score = mean win rate over all
comparisons, which, with every baseline answering every question, is the mean of the per-baseline
win rates (RE-Bench's score). A judge that can't be reached, times out or answers anything but A
or B makes the score NaN.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the protected copy holds common/, chat.py and task.py beside this file

import chat  # noqa: E402 - found once HERE is on the path
import hf_chat  # noqa: E402
import judging  # noqa: E402
import task  # noqa: E402
import torch  # noqa: E402
from common import checkpoints, llm, nanogpt  # noqa: E402

if TYPE_CHECKING:  # the package as mypy sees it; at run time, `common` is copied beside this file
    from environments.common.result import emit
else:
    from common.result import emit

API_KEY_VARIABLE = "CHAT_RL_JUDGE_API_KEY"


def load_policy(path: Path, base: nanogpt.GPT, max_parameters: int) -> nanogpt.GPT:
    """The expert's model, or a ValueError that says why it can't be scored."""
    if not path.is_file():
        raise ValueError("No model.pth in the workspace.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable or unsafe file: say so, never run it
        raise ValueError(f"model.pth is not a checkpoint torch can read safely (weights only): {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict) or "model" not in data:
        raise ValueError('model.pth must be {"config": {...}, "model": state_dict}, as save_checkpoint writes it.')
    try:
        config = nanogpt.GPTConfig(**data["config"])
        model = nanogpt.GPT(config)
        model.load_state_dict(data["model"])
    except Exception as exc:  # wrong keys or shapes
        raise ValueError(f"model.pth doesn't fit its config: {str(exc).splitlines()[0][:300]}") from None
    if config.vocab_size != base.config.vocab_size:
        wanted = base.config.vocab_size
        raise ValueError(f"The model's vocabulary has {config.vocab_size} tokens; the base model's has {wanted}.")
    size = sum(p.numel() for p in model.parameters())
    if size > max_parameters:
        raise ValueError(f"The model has {size} parameters; at most {max_parameters} are scored here.")
    return model.eval()


def _device(params: dict[str, Any]) -> str:
    # Full scale answers with a GPT-2-sized model: on the workstation's GPU when it has one; small
    # names the CPU, where every workstation samples from the same logits.
    return str(params.get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))


def nanogpt_answers(
    doc: dict[str, Any], workspace: Path, questions: list[str]
) -> tuple[list[str], dict[str, list[str]]]:
    """The policy's answers (model.pth, this environment's byte-level GPT) and each baseline's; ValueError: why not."""
    params = doc["params"]
    base_path = task.base_model_path(doc)
    if not base_path.is_file():
        raise ValueError(f"The base model is missing ({base_path}): the workspace's start didn't run.")
    base = nanogpt.load_checkpoint(base_path)
    base_size = sum(p.numel() for p in base.parameters())
    policy = load_policy(workspace / "model.pth", base, int(params.get("max_parameter_ratio", 4)) * base_size)
    device = _device(params)
    policy, base = policy.to(device), base.to(device)
    seed = int(params.get("seed", 0))
    chatting = task.chat_settings(doc)

    def generate(model: nanogpt.GPT, temp: float, offset: int) -> list[str]:
        generator = torch.Generator().manual_seed(seed + offset)
        texts: list[str] = chat.answers(
            model,
            questions,
            temperature=temp,
            generator=generator,
            max_new_tokens=chatting["max_new_tokens"],
            template=chatting["prompt_template"],
            end=chatting["answer_end"],
        )
        return texts

    def load(path: Path, name: str) -> nanogpt.GPT:
        return nanogpt.load_checkpoint(path).to(device).eval()

    return compared(doc, generate, policy, base, load)


def compared(
    doc: dict[str, Any],
    generate: Callable[..., list[str]],
    policy: Any,
    base: Any,
    load: Callable[[Path, str], Any],
    **asked: Any,
) -> tuple[list[str], dict[str, list[str]]]:
    """The policy's answers and each of the configuration's baselines' (loaded with `load` unless the base).

    `generate(model, temperature, seed offset, **asked)`. Each baseline answers with its own seed
    offset (its place in the list): the first, the base model at the policy's settings, samples what
    an untouched policy samples, and ties with it. `asked`: the policy's own sampling, if any.
    """
    temperature = float(task.chat_settings(doc)["temperature"])
    baselines: dict[str, list[str]] = {}
    for offset, baseline in enumerate(task.baselines(doc)):
        model = base if baseline.model is None else load(baseline.model, baseline.name)
        temp = temperature if baseline.temperature is None else baseline.temperature
        baselines[baseline.name] = generate(model, temp, offset)
    return generate(policy, temperature, 0, **asked), baselines


def hf_model(folder: Path, label: str, **limits: int) -> Any:
    """A GPT-2 folder (config.json and weight files) built without running any of its code; ValueError says why not."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except FileNotFoundError:
        raise ValueError(f"{label} has no config.json.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{label}/config.json is not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{label}/config.json must be a JSON object.")
    state, why = checkpoints.folder_state_dict(folder, label)
    if state is None:
        raise ValueError(why)
    return hf_chat.build(config, state, **limits)


def hf_answers(doc: dict[str, Any], workspace: Path, questions: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """As nanogpt_answers, for Hugging Face GPT-2 folders (RE-Bench's model): the expert's is `model/`."""
    params = doc["params"]
    base_dir = task.base_model_path(doc)
    if not base_dir.is_dir():
        raise ValueError(f"The base model is missing ({base_dir}): the workspace's start didn't run.")
    tokenizer = hf_chat.load_tokenizer(base_dir)  # the base model's, never a tokenizer of the expert's
    base = hf_model(base_dir, "the base model")
    policy_dir = workspace / "model"
    if not policy_dir.is_dir():
        raise ValueError("No model/ folder in the workspace (a Hugging Face GPT-2: config.json and safetensors).")
    base_size = sum(p.numel() for p in base.parameters())
    policy = hf_model(
        policy_dir,
        "model",
        vocab_size=base.config.vocab_size,
        max_parameters=int(params.get("max_parameter_ratio", 4)) * base_size,
    )
    device = _device(params)
    chatting = task.chat_settings(doc)
    seed = int(params.get("seed", 0))

    def generate(model: Any, temp: float, offset: int, **asked: Any) -> list[str]:
        options = {"max_new_tokens": chatting["max_new_tokens"], "temperature": temp, **asked}
        texts: list[str] = hf_chat.answers(
            model.to(device),
            tokenizer,
            questions,
            template=chatting["prompt_template"],
            end=chatting["answer_end"],
            seed=seed + offset,
            **options,
        )
        return texts

    def load(folder: Path, name: str) -> Any:
        return hf_model(folder, f"the baseline {name!r}")

    # The expert's model samples as its generation_config.json asks (within bounds); the baselines
    # as the configuration says.
    asked = hf_chat.sampling(policy_dir, max_new_tokens=int(chatting["max_new_tokens"]))
    return compared(doc, generate, policy, base, load, **asked)


def main(workspace: Path) -> dict[str, Any]:
    key = os.environ.pop(API_KEY_VARIABLE, "")
    doc = task.configuration()
    params, settings = doc["params"], doc.get("settings", {})
    task.setup_threads(params)
    url = str(settings.get("judge_url") or "")
    if not url:
        return {
            "score": None,
            "message": "This environment needs a judge endpoint: set CHAT_RL_JUDGE_URL (an OpenAI-compatible …/v1 "
            "URL) on the workstation. The small configuration can use the rule-based judge (judge_model/serve.py).",
        }
    questions = task.heldout_questions(doc)
    started = time.monotonic()
    try:
        if params.get("model_format") == "hf":
            answers, baselines = hf_answers(doc, workspace, questions)
        else:
            answers, baselines = nanogpt_answers(doc, workspace, questions)
    except ValueError as exc:
        return {"score": None, "message": str(exc)}
    seed = int(params.get("seed", 0))
    try:
        judge = llm.ChatClient(
            url,
            api_key=key,
            model=str(settings.get("judge_model") or ""),
            timeout=float(settings.get("judge_timeout") or 60),
        )
    except llm.EndpointError as exc:
        return {"score": None, "message": str(exc)}
    order = random.Random(seed)  # noqa: S311 - shuffles the answer order, not a secret
    results: list[float] = []
    asked = 0
    examples: list[dict[str, Any]] = []
    for index, question in enumerate(questions):
        for name, answers_of in baselines.items():
            ours, theirs = answers[index], answers_of[index]
            flip = order.random() < 0.5
            if ours == theirs:
                results.append(0.5)
                continue
            first, second = (theirs, ours) if flip else (ours, theirs)
            try:
                answer = judge.complete(
                    judging.messages(question, first, second), max_tokens=judging.VERDICT_TOKENS, temperature=0
                )
                verdict = judging.parse_verdict(answer.text)
            except (llm.EndpointError, judging.VerdictError) as exc:
                reason = exc.message if isinstance(exc, llm.EndpointError) else str(exc)
                return {
                    "score": None,
                    "message": f"The judge failed after {asked} comparisons: {reason}",
                    "details": {
                        "judge_error": reason,
                        "timeout": isinstance(exc, llm.EndpointError) and exc.timeout,
                        "compared": asked,
                    },
                }
            asked += 1
            won = (verdict == "A") != flip
            results.append(1.0 if won else 0.0)
            if len(examples) < 4:
                examples.append({"question": question, "answer": ours, "baseline": name, "other": theirs, "won": won})
    by_baseline = {
        name: sum(results[i * len(baselines) + j] for i in range(len(questions))) / len(questions)
        for j, name in enumerate(baselines)
    }
    score = sum(results) / len(results)
    return {
        "score": score,
        "message": f"Mean win rate {score:.3f} over {len(questions)} held-out questions against two baselines "
        f"({', '.join(f'{n}: {v:.2f}' for n, v in by_baseline.items())}).",
        "details": {
            "win_rate": by_baseline,
            "judge_calls": asked,
            "ties": len(results) - asked,
            "examples": examples,
            "configuration": doc.get("name", ""),
            "seconds": round(time.monotonic() - started, 2),
        },
    }


if __name__ == "__main__":
    emit(lambda: main(Path(sys.argv[1]).resolve()))
