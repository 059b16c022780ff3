"""ai_rd_optimize_llm_foundry start: the workspace's inputs.

Full scale: RE-Bench's own files from the task folder (`workspace_files`: LLM Foundry's
finetune.sh and finetune.yaml, the training data, the base model folder), in place of the small
configuration's script. Small: the base model, data and reference weights are built (cached), and
the package's finetune.sh and finetune.py stay.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import task


def main(workspace: Path, configuration: Path) -> None:
    doc = task.configuration(configuration)
    if doc["paths"].get("task_dir"):
        sources = task.upstream_files(doc)
        missing = [str(p) for p in sources if not p.exists()]
        if missing:
            raise SystemExit(f"The task folder lacks what the expert gets: {', '.join(missing)}.")
        for name in task.WORKSPACE_FILES:  # this is a staging folder: nothing of the expert's is here
            (workspace / name).unlink(missing_ok=True)
        for source in sources:
            if source.is_dir():
                shutil.copytree(source, workspace / source.name, dirs_exist_ok=True)
            else:
                shutil.copy2(source, workspace / source.name)
        return
    files = task.prepare_small(doc)
    shutil.copy2(task.HERE / "common" / "nanogpt.py", workspace / "model.py")
    for name, target in (("base_model", "base_model.pth"), ("train_data", "train_data.jsonl")):
        if not (workspace / target).exists():
            shutil.copy2(files[name], workspace / target)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
