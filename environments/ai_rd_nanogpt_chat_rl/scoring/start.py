"""ai_rd_nanogpt_chat_rl start: train (or take) the base model, fill the workspace with it and its code.

The model's format is the configuration's: this environment's byte-level GPT (`model.pth`, small)
or a Hugging Face GPT-2 folder (`model/`, full: RE-Bench's). Either way the starting solution is
the base model itself.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import task


def main(workspace: Path, configuration: Path) -> None:
    doc = task.configuration(configuration)
    task.setup_threads(doc["params"])
    base = task.base_model_path(doc, build=True)
    shutil.copy2(task.HERE / "common" / "nanogpt.py", workspace / "model.py")
    for name in ("chat.py", "judging.py", "evaluation.py", "hf_chat.py"):
        shutil.copy2(task.HERE / name, workspace / name)
    # What the scorer samples with, as chat.py's defaults in the workspace (see chat.settings).
    (workspace / "chat.json").write_text(json.dumps(task.chat_settings(doc), indent=2) + "\n")
    if doc["params"].get("model_format") == "hf":
        shutil.copytree(base, workspace / "base_model", dirs_exist_ok=True)
        if not (workspace / "model").exists():
            shutil.copytree(base, workspace / "model")
        return
    shutil.copy2(base, workspace / "base_model.pth")
    if not (workspace / "model.pth").exists():
        shutil.copy2(base, workspace / "model.pth")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
