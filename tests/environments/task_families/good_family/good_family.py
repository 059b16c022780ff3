"""A Task Standard family with intermediate scoring that exercises every method (see test_task_standard.py)."""

import os
from pathlib import Path
from typing import Any


class TaskFamily:
    standard_version = "0.3.0"
    required_environment_variables = ["REBENCH_GOOD_FAMILY_FLAG"]

    @staticmethod
    def get_tasks() -> dict[str, dict[str, Any]]:
        return {"easy": {"greeting": "hello"}, "hard": {"greeting": "good luck"}}

    @staticmethod
    def get_instructions(t: dict[str, Any]) -> str:
        return f"Say {t['greeting']}.\n\nWrite a number to answer.txt; it is your score."

    @staticmethod
    def get_permissions(t: dict[str, Any]) -> list[str]:
        return ["full_internet"] if t["greeting"] == "good luck" else []

    @staticmethod
    def start(t: dict[str, Any]) -> None:
        Path("start.txt").write_text(t["greeting"] + " " + os.environ["REBENCH_GOOD_FAMILY_FLAG"])

    @staticmethod
    def intermediate_score(t: dict[str, Any]) -> dict[str, Any]:
        answer = Path("answer.txt")
        if not answer.exists():
            return {"score": float("nan"), "message": {"error": "no answer.txt"}, "details": {}}
        return {"score": float(answer.read_text()), "message": {"read": "answer.txt"}, "details": {"task": t}}

    @staticmethod
    def aggregate_scores(t: dict[str, Any], score_log: list[dict[str, Any]]) -> float:
        valid = [e["score"] for e in score_log if e["score"] is not None and e["score"] == e["score"]]
        return max(valid) if valid else float("nan")

    @staticmethod
    def teardown() -> None:
        Path("teardown.txt").write_text("done")
