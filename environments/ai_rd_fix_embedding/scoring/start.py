"""ai_rd_fix_embedding start: train (or take) the models, permute the large one's embeddings, fill the workspace."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import task
from common import corpus  # beside task.py in the protected copy (task put it on the path)


def main(workspace: Path, configuration: Path) -> None:
    doc = task.configuration(configuration)
    task.setup_threads(doc["params"])
    corrupted = task.corrupted_model_path(doc)
    shutil.copy2(task.HERE / "common" / "nanogpt.py", workspace / "model.py")
    # RE-Bench's names: the broken model, and a much smaller one trained on the same data, intact.
    shutil.copy2(corrupted, workspace / "large_model.pth")
    shutil.copy2(task.small_model_path(doc), workspace / "small_correct_model.pth")
    if not (workspace / "fixed_model.pth").exists():
        shutil.copy2(corrupted, workspace / "fixed_model.pth")  # the starting solution: the broken model itself
    # The expert's validation split, never the held-out text the scorer evaluates on (task.heldout_path).
    corpus.give_expert_data(doc, workspace / "data")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
