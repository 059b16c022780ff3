"""A model folder is weights and an architecture, never code: the chat RL scorer builds GPT-2 itself.

RE-Bench's chat RL model is a Hugging Face folder, and a Hugging Face config can name code to fetch
and run: an attention kernel from the hub (`attn_implementation`), a class of the folder's own
(`auto_map`), a quantiser. The scorer, which has the network to reach its judge, builds the
expert's `model/` from the architecture's keys of config.json alone, with torch's own attention,
and reads the weights with safetensors' loader (pickled code is refused: see
tests/environments/test_nanogpt_chat_rl.py). The attack is the expert's: a config that asks for a
hub kernel and a class of its own, beside the code to run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.environments.scoring_support import small_configuration
from tests.environments.test_nanogpt_chat_rl import PACKAGE, full_gpt2_workspace, score_with

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(400)]
__all__ = ["small_configuration"]

EVIL = "import pathlib\npathlib.Path({marker!r}).touch()\n"


def test_a_config_that_asks_for_a_hub_kernel_and_its_own_class_gets_torchs_attention_and_runs_nothing(
    small_configuration: Any, tmp_path: Path
) -> None:
    workspace = full_gpt2_workspace(
        small_configuration, tmp_path, prompts=PACKAGE / "scoring" / "prompts_heldout.jsonl"
    )
    model = workspace / "model"
    marker = tmp_path / "ran-the-experts-code"
    (model / "evil.py").write_text(EVIL.format(marker=str(marker)))
    config = json.loads((model / "config.json").read_text())
    config.update(
        {
            "attn_implementation": "kernels-community/flash-attn",
            "_attn_implementation": "kernels-community/flash-attn",
            "auto_map": {"AutoConfig": "evil.Config", "AutoModelForCausalLM": "evil.Model"},
            "quantization_config": {"quant_method": "bitsandbytes", "load_in_8bit": True},
        }
    )
    (model / "config.json").write_text(json.dumps(config))

    result = score_with(lambda body: "A", workspace, tmp_path / "scratch", small_configuration)
    # Scored as the plain GPT-2 its architecture describes (before: NaN, the scorer reaching for the
    # `kernels` package to fetch the hub kernel the file named).
    assert result["score"] is not None, result["message"]
    assert "kernels" not in result["message"]
    assert not marker.exists()
