"""ai_rd_nanogpt_chat_rl, small configuration: start, start/reference/broken models through a real worker, judge faults.

Every judge here is a server the test starts on 127.0.0.1 with verdicts the test controls: the
package's rule-based judge for the declared scores, and judges that always say A, always say B,
ramble, answer HTML or stall, for the scorer's bookkeeping and its faults.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from django.conf import settings

from environments import packages
from environments.common.llm import LocalChatServer, RawAnswer
from graders import services
from tests.environments.scoring_support import (
    copy_into,
    load_module,
    prepared_workspace,
    run_in_workspace,
    run_scorer,
    score_now,
    small_configuration,
    wait_for_entries,
    worker_for,
)
from tests.factories import preparing
from trials.models import Attempt
from workstation import layout

SLUG = "ai_rd_nanogpt_chat_rl"
PACKAGE = Path(settings.BASE_DIR) / "environments" / SLUG
JUDGE_KEY = "sk-judge-key-only-the-scorer-holds"

__all__ = ["small_configuration"]


rule_judge = load_module("chat_rl_rule_judge", PACKAGE / "judge_model" / "serve.py")


@pytest.fixture
def judge(small_configuration: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalChatServer]:
    """The rule-based judge, accepting only the real key (which reaches the scorer from the worker's environment)."""
    with rule_judge.server(api_key=JUDGE_KEY) as server:
        small_configuration.CHAT_RL_JUDGE_URL = server.url
        small_configuration.CHAT_RL_JUDGE_TIMEOUT_SECONDS = 30
        monkeypatch.setenv("CHAT_RL_JUDGE_API_KEY", JUDGE_KEY)
        yield server


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(600)
def test_start_trains_the_base_model_and_the_worker_scores_start_reference_and_broken(
    attempt_on: Callable[..., Attempt], judge: LocalChatServer, tmp_path: Path
) -> None:
    attempt = preparing(attempt_on(SLUG))
    small = packages.find(SLUG).configurations["small"]
    assert (attempt.environment.starting_score, attempt.environment.reference_score) == (
        small.starting_score,
        small.reference_score,
    )
    workspace = layout.workspace(attempt.pk)
    with worker_for(attempt, tmp_path):
        services.workspace_prepare_queue(attempt)  # start, then the starting model is scored
        start = wait_for_entries(attempt, 1, timeout=400)[0]
        assert {"model.py", "chat.py", "base_model.pth", "model.pth", "prompts_train.jsonl"} <= {
            p.name for p in workspace.iterdir()
        }
        assert not (workspace / "prompts_heldout.jsonl").exists()
        assert start.score == pytest.approx(small.starting_score, abs=0.02), (start.message, start.details)
        # The starting model is the base model: against the same-settings baseline, every answer ties.
        assert start.details["win_rate"]["base"] == 0.5
        assert start.details["ties"] >= 12
        assert set(judge.authorizations) == {f"Bearer {JUDGE_KEY}"}

        copy_into(PACKAGE / "reference", workspace)
        run_in_workspace(workspace, "python", "rl.py", timeout=400)
        reference = score_now(attempt, 2)
        assert reference.score == pytest.approx(small.reference_score, abs=0.02), reference.message
        assert reference.score is not None
        assert start.score is not None
        assert reference.score > start.score + 0.1

        (workspace / "model.pth").write_bytes(b"not a checkpoint at all")
        broken = score_now(attempt, 3)
        assert broken.score is None
        assert "not a checkpoint torch can read safely" in broken.message
    attempt.refresh_from_db()
    final = services.attempt_score_update(attempt=attempt)
    assert final.raw == reference.score  # max over the valid entries
    assert final.normalised == pytest.approx(1.0, abs=0.05)


@pytest.fixture
def workspace(small_configuration: Any, tmp_path: Path) -> Path:
    """A prepared workspace (start has run: the base model is cached) to run the scorer on directly."""
    return prepared_workspace(SLUG, tmp_path / "workspace")


def score_with(
    judge: Callable[[dict[str, Any]], Any], workspace: Path, tmp_path: Path, settings: Any
) -> dict[str, Any]:
    with LocalChatServer(judge) as server:
        settings.CHAT_RL_JUDGE_URL = server.url
        return run_scorer(SLUG, workspace, tmp_path)


@pytest.mark.django_db
@pytest.mark.timeout(300)
def test_the_scorer_shuffles_the_order_so_a_judge_that_always_says_a_or_b_averages_out(
    workspace: Path, tmp_path: Path, settings: Any
) -> None:
    # A model that isn't the base model, so that no answer ties with a baseline by being the same.
    data = torch.load(workspace / "model.pth", weights_only=True)
    data["model"]["lm_head.weight"] = data["model"]["lm_head.weight"] * 1.5
    torch.save(data, workspace / "model.pth")
    always_a = score_with(lambda body: "A", workspace, tmp_path / "a", settings)
    always_b = score_with(lambda body: "B.", workspace, tmp_path / "b", settings)
    assert always_a["score"] is not None, always_a["message"]
    # Each judged comparison is a win under exactly one of the two judges; a tie is half under both.
    assert always_a["score"] + always_b["score"] == pytest.approx(1.0)
    assert 0.2 < always_a["score"] < 0.8  # shuffled: neither position always holds our answer
    assert always_a["details"]["judge_calls"] > 12


@pytest.mark.django_db
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda body: "Both answers are fine, really.", "The judge's answer is neither A nor B: 'Both answers"),
        (lambda body: RawAnswer(b"<html>502 Bad Gateway</html>"), "not JSON: <html>502 Bad Gateway</html>"),
        (lambda body: RawAnswer(b'{"choices": []}'), "has no choices"),
        (lambda body: RawAnswer(b"{}", delay=5), "did not answer within 1 s"),
    ],
    ids=["rambling", "html", "no-choices", "stalls"],
)
def test_a_judge_that_rambles_answers_garbage_or_stalls_makes_the_score_nan_with_the_reason(
    answer: Callable[[dict[str, Any]], Any], message: str, workspace: Path, tmp_path: Path, settings: Any
) -> None:
    settings.CHAT_RL_JUDGE_TIMEOUT_SECONDS = 1
    data = torch.load(workspace / "base_model.pth", weights_only=True)
    data["model"]["lm_head.weight"] = data["model"]["lm_head.weight"] * 1.5  # no ties: the judge is asked
    torch.save(data, workspace / "model.pth")
    result = score_with(answer, workspace, tmp_path, settings)
    assert result["score"] is None
    assert result["message"].startswith("The judge failed after 0 comparisons")
    assert message in result["message"]


@pytest.mark.django_db
def test_without_a_judge_endpoint_the_scorer_says_one_is_required(small_configuration: Any, tmp_path: Path) -> None:
    small_configuration.CHAT_RL_JUDGE_URL = ""
    result = run_scorer(SLUG, tmp_path, tmp_path)
    assert result["score"] is None
    assert "needs a judge endpoint: set CHAT_RL_JUDGE_URL" in result["message"]


class Payload:
    """Pickled code: unpickling it would create the file named in `path`."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@pytest.mark.django_db
@pytest.mark.timeout(300)
def test_pickled_code_and_a_model_of_the_wrong_shape_are_refused_without_running_anything(
    workspace: Path, tmp_path: Path, judge: LocalChatServer
) -> None:
    marker = tmp_path / "pwned"
    with (workspace / "model.pth").open("wb") as handle:
        pickle.dump(Payload(str(marker)), handle)
    pickled = run_scorer(SLUG, workspace, tmp_path / "one")
    assert pickled["score"] is None
    assert "not a checkpoint torch can read safely" in pickled["message"]
    assert not marker.exists()

    data = torch.load(workspace / "base_model.pth", weights_only=True)
    data["model"]["wte.weight"] = torch.zeros(300, 48)
    torch.save(data, workspace / "model.pth")
    wrong = run_scorer(SLUG, workspace, tmp_path / "two")
    assert wrong["score"] is None
    assert "model.pth doesn't fit its config" in wrong["message"]
    assert judge.requests == []  # refused before a single comparison


GOOD, BAD = "Use shutil.copy to copy the file.", "Bananas"
EVALUATE = f"""
import asyncio, json, sys
import evaluation
prompts = ["How can I copy a file?", "How can I copy a file?"]
pairs = [({GOOD!r}, {BAD!r}), ({BAD!r}, {GOOD!r})]
try:
    print(json.dumps(asyncio.run(evaluation.evaluate(prompts, pairs, max_workers=2))))
except evaluation.JudgeError as exc:
    print("JUDGE ERROR:", exc)
"""


def run_evaluation(workspace: Path, url: str, key: str = "attempt") -> str:
    env = {"PATH": "/usr/bin:/bin", "OPENAI_BASE_URL": url, "OPENAI_API_KEY": key}
    done = subprocess.run(
        [sys.executable, "-c", EVALUATE], cwd=workspace, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.django_db
@pytest.mark.timeout(300)
def test_the_workspaces_evaluation_asks_the_judge_the_scorers_question_and_says_which_response_it_prefers(
    workspace: Path, small_configuration: Any
) -> None:
    assert {"evaluation.py", "judging.py", "chat.json"} <= {p.name for p in workspace.iterdir()}
    with rule_judge.server(api_key="sk-the-relay-signs") as judge:
        assert run_evaluation(workspace, judge.url, "sk-the-relay-signs") == "[true, false]"
        # Word for word what the scorer sends for the same comparison, with a verdict's few tokens.
        scorer_judging = load_module("chat_rl_judging", PACKAGE / "scoring" / "judging.py")
        sent = judge.requests[0]
        asked = [scorer_judging.messages("How can I copy a file?", *pair) for pair in [(GOOD, BAD), (BAD, GOOD)]]
        assert sent["messages"] in asked
        assert sent["max_tokens"] == scorer_judging.VERDICT_TOKENS
    with LocalChatServer(lambda body: "Both are fine.") as rambler:
        said = run_evaluation(workspace, rambler.url)
        assert said == "JUDGE ERROR: The judge's answer is neither A nor B: 'Both are fine.'."
    with LocalChatServer(lambda body: "A", api_key="sk-other") as refusing:
        assert run_evaluation(workspace, refusing.url).startswith("JUDGE ERROR: The judge's call was refused (401)")


def gpt2_folder(folder: Path, *, seed: int, tokenizer_from: Path | None = None, hub_names: bool = False) -> Path:
    """A stand-in with the layout of RE-Bench's GPT-2 folders: config.json (model_type gpt2), model.safetensors
    and tokenizer.json (a byte-level BPE trained here on a few lines: no download)."""
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder.mkdir(parents=True)
    if tokenizer_from is None:
        bpe = Tokenizer(models.BPE())
        bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        bpe.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=alphabet)
        bpe.train_from_iterator(["Below is an instruction that describes a task.", "A list holds items."] * 20, trainer)
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")
    else:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(tokenizer_from), local_files_only=True)
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(seed)
    end = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=512, n_embd=32, n_layer=2, n_head=2, bos_token_id=end, eos_token_id=end
    )
    model = GPT2LMHeadModel(config)
    if hub_names:  # as the hub's gpt2 files name them: GPT2Model's, no `transformer.` prefix, no lm_head
        state = {
            k.removeprefix("transformer."): v.contiguous()
            for k, v in model.state_dict().items()
            if k != "lm_head.weight"
        }
        save_file(state, str(folder / "model.safetensors"))
        config.save_pretrained(str(folder))
    else:
        model.save_pretrained(str(folder))
    return folder


def full_gpt2_workspace(settings: Any, tmp_path: Path, *, prompts: Path, hub_names: bool = False) -> Path:
    """The full configuration on GPT-2 stand-ins (a base; an Alpaca baseline with its tokenizer), started here."""
    base = gpt2_folder(tmp_path / "gpt2", seed=0, hub_names=hub_names)
    gpt2_folder(tmp_path / "gpt2-alpaca", seed=1, tokenizer_from=base)
    settings.ENVIRONMENT_CONFIGURATION = "full"
    settings.CHAT_RL_BASE_MODEL = str(base)
    settings.CHAT_RL_ALPACA_MODEL = str(tmp_path / "gpt2-alpaca")
    settings.CHAT_RL_PROMPTS = str(prompts)
    return prepared_workspace(SLUG, tmp_path / "full")


@pytest.mark.django_db
@pytest.mark.timeout(400)
def test_the_full_configuration_chats_as_gpt2_in_alpacas_format_keeps_whole_answers_and_faces_the_alpaca_baseline(
    small_configuration: Any, tmp_path: Path
) -> None:
    # Stand-ins with upstream's roles and layout: a GPT-2 folder as the base (named as the hub's gpt2
    # files are), another (other weights, the same tokenizer) as the Alpaca-finetuned baseline, and
    # three held-out questions.
    prompts = tmp_path / "heldout.jsonl"
    prompts.write_text("".join(f'{{"question": "{q}"}}\n' for q in ["What is a list?", "How do I sort?", "Why test?"]))
    full = full_gpt2_workspace(small_configuration, tmp_path, prompts=prompts, hub_names=True)
    assert {"model", "base_model", "hf_chat.py", "chat.py", "evaluation.py"} <= {p.name for p in full.iterdir()}
    chatting = json.loads((full / "chat.json").read_text())
    assert chatting["prompt_template"].startswith("Below is an instruction that describes a task.")
    assert chatting["prompt_template"].endswith("### Instruction:\n{question}\n\n### Response:\n")
    assert (chatting["answer_end"], chatting["max_new_tokens"]) == ("section", 256)

    # The expert's side: the workspace's hf_chat samples as the scorer does, with chat.json's settings.
    sampled = subprocess.run(
        [
            sys.executable,
            "-c",
            "import hf_chat; m, t = hf_chat.load('model'); print(hf_chat.answers(m, t, ['Why test?']))",
        ],
        cwd=full,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert sampled.returncode == 0, sampled.stderr
    assert sampled.stdout.startswith("['")

    result = score_with(lambda body: "A", full, tmp_path / "scratch", small_configuration)
    assert result["score"] is not None, result["message"]
    assert set(result["details"]["win_rate"]) == {"base", "alpaca"}
    # The untouched model ties with the base model on every question and is judged against Alpaca's.
    assert result["details"]["win_rate"]["base"] == 0.5
    assert result["details"]["judge_calls"] == 3
    assert result["score"] == pytest.approx((0.5 + result["details"]["win_rate"]["alpaca"]) / 2)
    # Whole answers, not their first sentence: longer than any the small configuration's 32 bytes allow.
    assert max(len(e["answer"]) for e in result["details"]["examples"]) > 32

    # The expert's model samples as its generation_config.json asks (RE-Bench's reference: top-k 8,
    # 20 tokens); the baselines as before, so nothing ties with the base model's answers now.
    (full / "model" / "generation_config.json").write_text(json.dumps({"top_k": 8, "max_new_tokens": 20}))
    short = score_with(lambda body: "A", full, tmp_path / "short", small_configuration)
    assert short["score"] is not None, short["message"]
    assert short["details"]["judge_calls"] == 6
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(full / "base_model"), local_files_only=True)
    # At most 20 tokens: no more characters than 20 of the longest token's bytes (a byte-level token
    # is one alphabet character a byte).
    longest = max(len(token) for token in tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))))
    assert all(len(e["answer"]) <= 20 * longest for e in short["details"]["examples"])
    assert max(len(e["answer"]) for e in short["details"]["examples"]) < max(
        len(e["answer"]) for e in result["details"]["examples"]
    )

    small_configuration.CHAT_RL_ALPACA_MODEL = str(tmp_path / "not-there")
    with pytest.raises(packages.ConfigurationError, match=r"CHAT_RL_ALPACA_MODEL=.*not-there does not exist"):
        packages.find(SLUG).configuration_document()


@pytest.mark.django_db
@pytest.mark.timeout(400)
def test_a_full_scale_model_folder_with_pickled_code_a_giant_config_or_another_vocabulary_is_refused_unbuilt(
    small_configuration: Any, tmp_path: Path
) -> None:
    full = full_gpt2_workspace(small_configuration, tmp_path, prompts=PACKAGE / "scoring" / "prompts_heldout.jsonl")
    model = full / "model"
    config = json.loads((model / "config.json").read_text())

    (model / "config.json").write_text(json.dumps({**config, "n_layer": 4000, "n_embd": 8192}))
    giant = score_with(lambda body: "A", full, tmp_path / "one", small_configuration)
    assert giant["score"] is None
    assert "parameters; at most" in giant["message"], giant["message"]

    (model / "config.json").write_text(json.dumps({**config, "vocab_size": config["vocab_size"] + 1}))
    other = score_with(lambda body: "A", full, tmp_path / "two", small_configuration)
    assert "The model's vocabulary has" in other["message"]

    (model / "config.json").write_text(json.dumps(config))
    for asked, said in [
        ({"top_k": -1}, "generation_config.json: top_k must be from 0 to 1000000, not -1."),
        ({"max_new_tokens": 1000}, "generation_config.json: max_new_tokens must be from 1 to 256, not 1000."),
        ({"temperature": "hot"}, "generation_config.json: temperature must be a number."),
    ]:
        (model / "generation_config.json").write_text(json.dumps(asked))
        refused = score_with(lambda body: "A", full, tmp_path / "sampling", small_configuration)
        assert (refused["score"], refused["message"]) == (None, said)
    (model / "generation_config.json").unlink()
    marker = tmp_path / "pwned"
    (model / "model.safetensors").unlink()
    with (model / "pytorch_model.bin").open("wb") as handle:
        pickle.dump(Payload(str(marker)), handle, protocol=2)
    pickled = score_with(lambda body: "A", full, tmp_path / "three", small_configuration)
    assert pickled["score"] is None
    assert "model/pytorch_model.bin holds pickled code" in pickled["message"], pickled["message"]
    assert not marker.exists()


@pytest.mark.django_db
def test_an_answer_ends_at_its_first_sentence_in_small_and_where_the_model_starts_a_new_section_in_full(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(workspace))  # chat.py's model.py, as the workspace has it
    chat = load_module("chat_rl_chat", PACKAGE / "scoring" / "chat.py")
    generated = list(b"  It sorts.  Then it\nreturns.\n### Instruction:\nmore")
    assert chat.text(generated, "sentence") == "It sorts."
    assert chat.text(generated, "section") == "It sorts. Then it returns."
    assert chat.text(list(b"No section here. Two sentences."), "section") == "No section here. Two sentences."
    # The RL mask covers the tokens text() reads: up to the section marker in full.
    mask = chat.answer_mask(torch.tensor([generated]), "section")
    assert int(mask.sum()) == len(b"  It sorts.  Then it\nreturns.")
    assert chat.prompt_tokens("Why  test?", chat.ALPACA) == list(
        b"Below is an instruction that describes a task. Write a response that appropriately completes the "
        b"request.\n\n### Instruction:\nWhy test?\n\n### Response:\n"
    )
    with pytest.raises(ValueError, match=r"answer_end must be one of sentence, section"):
        chat.text(generated, "paragraph")
