"""ai_rd_fix_embedding start: train (or take) the models, permute the large one's embeddings, fill the workspace."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import task


def main(workspace: Path, configuration: Path) -> None:
    doc = task.configuration(configuration)
    task.setup_threads(doc["params"])
    corrupted = task.corrupted_model_path(doc)
    data = task.data_dir(doc, build=True)
    shutil.copy2(task.HERE / "common" / "nanogpt.py", workspace / "model.py")
    # RE-Bench's names: the broken model, and a much smaller one trained on the same data, intact.
    shutil.copy2(corrupted, workspace / "large_model.pth")
    shutil.copy2(task.small_model_path(doc), workspace / "small_correct_model.pth")
    if not (workspace / "fixed_model.pth").exists():
        shutil.copy2(corrupted, workspace / "fixed_model.pth")  # the starting solution: the broken model itself
    (workspace / "data").mkdir(exist_ok=True)
    # The expert's validation split, never the held-out text the scorer evaluates on (task.heldout_path).
    for name, source in (("train.bin", data / "train.bin"), ("val.bin", task.expert_val_path(doc))):
        target = workspace / "data" / name
        if target.exists() or target.is_symlink():
            continue
        if doc["paths"].get("data_dir"):
            target.symlink_to(source)  # full scale: gigabytes, read-only on the workstation
        else:
            shutil.copy2(source, target)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
