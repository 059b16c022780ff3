"""Files of runs for the import tests: real Inspect eval logs written by inspect_ai itself, and JSONL/CSV."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal


def write_inspect_log(
    log_dir: Path, *, environment: str, log_format: Literal["eval", "json"] = "eval", working_limit: int | None = None
) -> Path:
    """Run a tiny eval with inspect_ai's built-in mockllm/model, offline, and return its log file.

    Two samples; each is scored once mid-run (an intermediate score) and once at the end. The
    scorer's raw score is the sample's target plus the number of model turns so far, so sample
    "fast" (target 1.5) logs 2.5 then 3.5, and sample "slow" (target 2) logs 3.0 then 4.0.
    """
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput, ModelUsage, get_model
    from inspect_ai.scorer import Score, Target, mean, scorer
    from inspect_ai.scorer import score as score_now
    from inspect_ai.solver import Generate, TaskState, solver

    @scorer(metrics=[mean()])
    def turns_plus_target():
        async def score(state: TaskState, target: Target) -> Score:
            turns = sum(1 for m in state.messages if m.role == "assistant")
            return Score(value=float(target.text) + turns, explanation=f"after {turns} turns")

        return score

    @solver
    def work_and_score_midway():
        async def solve(state: TaskState, generate: Generate) -> TaskState:
            state = await generate(state)
            await score_now(state)  # an intermediate score, as RE-Bench agents score while they work
            return await generate(state)

        return solve

    def outputs() -> Iterator[ModelOutput]:
        while True:
            # Usage given up front: mockllm otherwise counts tokens with tiktoken, which downloads its vocabulary.
            output = ModelOutput.from_content(model="mockllm", content="working on it")
            output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
            yield output

    task = Task(
        dataset=[Sample(input="go", target="1.5", id="fast"), Sample(input="go", target="2", id="slow")],
        solver=[work_and_score_midway()],
        scorer=turns_plus_target(),
        metadata={"environment": environment},
        name="rebench_import_test",
    )
    logs = inspect_eval(
        task,
        model=get_model("mockllm/model", custom_outputs=outputs()),
        log_dir=str(log_dir),
        log_format=log_format,
        display="none",
        working_limit=working_limit,
    )
    assert logs[0].status == "success", logs[0].error
    return Path(logs[0].location)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def metr_row(run_id: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "task_id": "ai_rd_triton_cumsum/main",
        "task_family": "ai_rd_triton_cumsum",
        "run_id": run_id,
        "alias": "Claude 3.5 Sonnet (New)",
        "model": "claude-3-5-sonnet-20241022",
        "score_cont": 0.5,
        "human_minutes": 480,
        "time_limit": 28800,
        "scaffold": "modular",
        "task_source": "RE-Bench",
    }
    row.update(fields)
    return row
