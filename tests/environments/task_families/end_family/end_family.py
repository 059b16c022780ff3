"""A Task Standard family scored once, at the end, from the submission."""


class TaskFamily:
    standard_version = "0.3.0"

    @staticmethod
    def get_tasks() -> dict[str, dict]:
        return {"main": {"answer": "42"}}

    @staticmethod
    def get_instructions(t: dict) -> str:
        return "What is the answer? Put it in submission.txt."

    @staticmethod
    def score(t: dict, submission: str) -> float | None:
        return 1.0 if submission.strip() == t["answer"] else 0.0
