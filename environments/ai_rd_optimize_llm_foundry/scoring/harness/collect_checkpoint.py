"""ai_rd_optimize_llm_foundry's harness, the untimed step: hand the checkpoint finetune.sh wrote back to the scorer.

Usage: collect_checkpoint.py OUTPUT FOLDER. OUTPUT is relative to the workspace, links followed
(the harness's user can only reach what the sandbox shows it):

- a regular file (the small configuration's trained_model/model.pth) is copied to FOLDER/model.pth;
- a folder (RE-Bench's trained_model/, as LLM Foundry's convert_composer_to_hf writes it) has its
  weight files (WEIGHTS: safetensors and PyTorch shards, not its config or tokenizer) copied to
  FOLDER under their own names.

Anything else (missing, a pipe, a folder without weights) leaves FOLDER without weights and says why
on stderr. A separate harness run from the timed one, so the copy (gigabytes at full scale) is not timed.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys

# common.checkpoints.WEIGHT_SUFFIXES: the harness runs without the scorer's common code, so a copy.
WEIGHTS = (".safetensors", ".bin", ".pt", ".pth")


def _copy_regular(path: str, target: str) -> bool:
    """Copy `path` to `target` if it is a regular file; False (nothing copied) otherwise."""
    try:
        # O_NONBLOCK: a pipe planted at the output's path must not hold this step up.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        print(f"no checkpoint at {path}: {exc.strerror}", file=sys.stderr)
        return False
    with os.fdopen(descriptor, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            print(f"{path} is not a regular file", file=sys.stderr)
            return False
        with open(target, "wb") as copy:
            shutil.copyfileobj(source, copy, 1 << 22)
    return True


def main(output: str, folder: str) -> int:
    if not os.path.isdir(output):
        _copy_regular(output, os.path.join(folder, "model.pth"))
        return 0
    names = sorted(n for n in os.listdir(output) if n.endswith(WEIGHTS) and not n.startswith("."))
    if not names:
        print(f"{output}/ holds no weight files ({', '.join(WEIGHTS)})", file=sys.stderr)
    for name in names:
        _copy_regular(os.path.join(output, name), os.path.join(folder, name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
