"""Measure the small configuration's ground truth: held-out loss at the final run's budget, by width.

    .venv/bin/python environments/ai_rd_small_scaling_law/ground_truth.py [WIDTH ...]

Prepares a workspace of the small configuration as the site does, then trains the task's model
with the expert's own train.py (`run`, without the experiment limit) at each width for the
iterations the budget allows, and evaluates each on the held-out test split the scorer keeps (not
the expert's val.bin). Prints the table for metadata.yaml's `ground_truth`, sorted by max_iters
as the scorer interpolates it. One thread, the CPU arithmetic pinned as every small start is.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WIDTHS = (16, 24, 32, 48, 64, 96, 128)


def main(widths: list[int]) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebench_site.settings")
    os.environ["ENVIRONMENT_CONFIGURATION"] = "small"
    import django

    django.setup()
    from environments import packages
    from environments.common import corpus

    for name, value in packages.REPRODUCIBLE_CPU_ENVIRONMENT.items():
        if os.environ.get(name) != value:  # the pins act when torch loads: start again with them
            os.execve(  # noqa: S606 - this same script again, its own argv: no shell to go through
                sys.executable, [sys.executable, *sys.argv], {**os.environ, **packages.REPRODUCIBLE_CPU_ENVIRONMENT}
            )
    package = packages.find("ai_rd_small_scaling_law")
    assert package is not None
    params = package.configuration_document()["params"]
    workspace = Path(tempfile.mkdtemp(prefix="scaling-law-truth-"))
    package.prepare_staging(workspace)
    cache = package.cache_dir()
    assert cache is not None
    built = corpus.remembered(cache)  # the corpus the start just prepared
    assert built is not None
    held_out = built / "test.bin"
    spec = importlib.util.spec_from_file_location("train", workspace / "train.py")
    assert spec is not None
    assert spec.loader is not None
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    rows = []
    for width in widths:
        iters = round(params["budget_flops"] / train.flops(width, 1))
        result = train.run(width, iters, train_path=workspace / "data" / "train.bin", eval_path=held_out, limit=False)
        rows.append(result)
        print(json.dumps(result), flush=True)
    rows.sort(key=lambda row: row["max_iters"])
    print("ground_truth:")
    print(f"  max_iters: {[row['max_iters'] for row in rows]}")
    print(f"  loss: {[round(row['val_loss'], 4) for row in rows]}")


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or list(WIDTHS))
