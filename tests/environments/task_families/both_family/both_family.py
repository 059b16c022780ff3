"""Breaks the standard: both score and intermediate_score."""


class TaskFamily:
    standard_version = "0.3.0"

    @staticmethod
    def get_tasks() -> dict[str, dict]:
        return {"main": {}}

    @staticmethod
    def get_instructions(t: dict) -> str:
        return ""

    @staticmethod
    def score(t: dict, submission: str) -> float:
        return 1.0

    @staticmethod
    def intermediate_score(t: dict) -> dict:
        return {"score": 1.0}

    @staticmethod
    def aggregate_scores(t: dict, score_log: list[dict]) -> float:
        return 1.0
