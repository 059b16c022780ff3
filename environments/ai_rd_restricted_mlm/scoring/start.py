"""ai_rd_restricted_mlm start: the data (and its sizes) into the workspace, and the starting model trained once."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import corpus  # noqa: E402


def main(workspace: Path, configuration: Path) -> None:
    doc = json.loads(configuration.read_text())
    params = doc["params"]
    data = workspace / "data"
    # The expert's validation split (small: the corpus's dev.bin; full: OpenWebText's val.bin), never
    # the held-out test.bin the scorer evaluates on, which stays in the protected cache or its own folder.
    source = corpus.give_expert_data(doc, data)
    meta = {"vocab_size": params["vocab_size"], "mask_id": params["mask_id"], "block_size": params["block_size"]}
    (data / "meta.json").write_text(json.dumps(meta))
    if (workspace / "model.pth").exists():
        return
    # The starting solution is scored at start, so it starts trained: once per code and data, then cached.
    files = [workspace / "model.py", workspace / "train.py", data / "meta.json"]
    key = hashlib.sha256(b"".join(f.read_bytes() for f in files) + str(source).encode()).hexdigest()[:12]
    cached = Path(doc["cache_dir"]) / f"starting-model-{key}.pth"
    if not cached.exists():
        subprocess.run(  # noqa: S603 - our interpreter, the package's own starting train.py
            [sys.executable, "train.py", str(params["starting_steps"])], cwd=workspace, check=True, capture_output=True
        )
        shutil.move(workspace / "model.pth", cached.with_suffix(".tmp"))
        cached.with_suffix(".tmp").replace(cached)
    shutil.copy2(cached, workspace / "model.pth")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
