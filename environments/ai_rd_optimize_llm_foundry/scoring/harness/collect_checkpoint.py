"""ai_rd_optimize_llm_foundry's harness, the untimed step: hand the checkpoint finetune.sh wrote back to the scorer.

Usage: collect_checkpoint.py OUTPUT FOLDER. Copies OUTPUT (relative to the workspace, links
followed: the harness's user can only reach what the sandbox shows it) to FOLDER/model.pth when it
is a regular file; anything else (missing, a folder, a pipe) leaves FOLDER empty and says why on
stderr. A separate harness run from the timed one, so the copy (gigabytes at full scale) is not timed.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys


def main(output: str, folder: str) -> int:
    try:
        # O_NONBLOCK: a pipe planted at the output's path must not hold this step up.
        descriptor = os.open(output, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        print(f"no checkpoint at {output}: {exc.strerror}", file=sys.stderr)
        return 0
    with os.fdopen(descriptor, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            print(f"{output} is not a regular file", file=sys.stderr)
            return 0
        with open(os.path.join(folder, "model.pth"), "wb") as target:
            shutil.copyfileobj(source, target, 1 << 22)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
