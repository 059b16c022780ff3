"""A family written as METR's are: its assets read from /root, the agent's files written to /home/agent,
an install step, teardown without arguments, and a score a person gives (score returns None)."""

import os
import shutil
from pathlib import Path
from typing import Any


class TaskFamily:
    standard_version = "0.3.0"
    required_environment_variables = ["REBENCH_METR_FAMILY_INSTALL_LOG"]

    @staticmethod
    def install() -> None:
        # METR's image build installs packages here; this one says it ran, where the test can count.
        with open(os.environ["REBENCH_METR_FAMILY_INSTALL_LOG"], "a") as log:
            log.write("installed\n")

    @staticmethod
    def get_tasks() -> dict[str, dict[str, Any]]:
        return {"main": {"asset": "puzzle.txt"}}

    @staticmethod
    def get_instructions(t: dict[str, Any]) -> str:
        return "Solve /home/agent/puzzle.txt and write your answer to /home/agent/submission.txt."

    @staticmethod
    def start(t: dict[str, Any]) -> None:
        shutil.copy(f"/root/assets/{t['asset']}", f"/home/agent/{t['asset']}")
        Path("/home/agent/notes").mkdir()
        Path("/home/agent/notes/README").write_text("work here\n")

    @staticmethod
    def score(t: dict[str, Any], submission: str) -> float | None:
        return None  # a person reads the answer

    @staticmethod
    def teardown() -> None:
        pass
