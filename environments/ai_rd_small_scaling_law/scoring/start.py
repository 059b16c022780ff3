"""ai_rd_small_scaling_law start: the training code, the data, the task's numbers and the starting answer.

The workspace gets what RE-Bench's expert gets: the code to train the task's GPT (train.py, with
the model in model.py), a FLOP counter (flops.py) and the data. experiment.json holds the numbers
the expert may know: the model's fixed sizes, the learning rate, the final run's budget and the
limit of one experiment. The ground truth (the loss table) stays in configuration.json, which
only the scorer reads.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the protected copy holds common/ beside this file

from common import corpus  # noqa: E402 - after the path

# What of the configuration's params the expert's code reads; the rest (the loss table) is the scorer's.
EXPERT_PARAMS = ("model", "lr", "eval", "budget_flops", "budget_slack", "experiment_limit_flops", "threads", "device")


def main(workspace: Path, configuration: Path) -> None:
    doc: dict[str, Any] = json.loads(configuration.read_text())
    params = doc["params"]
    experiment = {key: params[key] for key in EXPERT_PARAMS if key in params}
    (workspace / "experiment.json").write_text(json.dumps(experiment, indent=2) + "\n")
    shutil.copy2(HERE / "common" / "nanogpt.py", workspace / "model.py")
    # The configuration's starting answer, over the package's copy of RE-Bench's (the staging folder is fresh).
    (workspace / "answer.json").write_text(json.dumps(params["starting_answer"]) + "\n")
    corpus.give_expert_data(doc, workspace / "data")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
