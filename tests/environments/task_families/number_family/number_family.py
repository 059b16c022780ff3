"""A Task Standard family scored at the end on a number: a submission that isn't one raises, quoted.

As many families do, it parses the submission without guarding it, so whatever the worker hands
it as the submission shows in the score log's traceback (see tests/hostile).
"""

from typing import Any


class TaskFamily:
    standard_version = "0.3.0"

    @staticmethod
    def get_tasks() -> dict[str, dict[str, Any]]:
        return {"main": {"answer": 42}}

    @staticmethod
    def get_instructions(t: dict[str, Any]) -> str:
        return "What is the answer? Put the number in submission.txt."

    @staticmethod
    def score(t: dict[str, Any], submission: str) -> float | None:
        return 1.0 if int(submission) == t["answer"] else 0.0
