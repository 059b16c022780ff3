"""A Task Standard family scored once, at the end, from the submission."""

from typing import Any


class TaskFamily:
    standard_version = "0.3.0"

    @staticmethod
    def get_tasks() -> dict[str, dict[str, Any]]:
        return {"main": {"answer": "42"}}

    @staticmethod
    def get_instructions(t: dict[str, Any]) -> str:
        return "What is the answer? Put it in submission.txt."

    @staticmethod
    def score(t: dict[str, Any], submission: str) -> float | None:
        return 1.0 if submission.strip() == t["answer"] else 0.0
