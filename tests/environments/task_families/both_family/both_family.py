"""Breaks the standard: both score and intermediate_score."""

from typing import Any


class TaskFamily:
    standard_version = "0.3.0"

    @staticmethod
    def get_tasks() -> dict[str, dict[str, Any]]:
        return {"main": {}}

    @staticmethod
    def get_instructions(t: dict[str, Any]) -> str:
        return ""

    @staticmethod
    def score(t: dict[str, Any], submission: str) -> float:
        return 1.0

    @staticmethod
    def intermediate_score(t: dict[str, Any]) -> dict[str, Any]:
        return {"score": 1.0}

    @staticmethod
    def aggregate_scores(t: dict[str, Any], score_log: list[dict[str, Any]]) -> float:
        return 1.0
