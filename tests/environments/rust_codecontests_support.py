"""ai_rd_rust_codecontests_inference's scripts as its tests drive them (the judge, the scripted model, the problem
generator), its held-out problems, and the rustc the judge uses (test_rust_codecontests_*.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.conftest import MISSING_TOOL_REASONS
from tests.environments.scoring_support import load_module

SLUG = "ai_rd_rust_codecontests_inference"
PACKAGE = Path(settings.BASE_DIR) / "environments" / SLUG


# judge.py imports judge_sandbox from beside it, as it runs: loaded first under that name, it is found.
load_module("judge_sandbox", PACKAGE / "scoring" / "judge_sandbox.py")
judge = load_module("rust_judge", PACKAGE / "scoring" / "judge.py")
scripted = load_module("rust_scripted_model", PACKAGE / "scripted_model" / "serve.py")
make_problems = load_module("rust_make_problems", PACKAGE / "problems" / "make_problems.py")


def heldout() -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in (PACKAGE / "scoring" / "problems" / "heldout.jsonl").read_text().splitlines()]
    return {row["name"]: row for row in rows}


def judge_rustc() -> str:
    """The rustc the judge will use; the test is skipped, saying why, where it finds none."""
    try:
        return judge.find_rustc()
    except judge.JudgeUnavailable:
        pytest.skip(MISSING_TOOL_REASONS["rustc"])


@pytest.fixture(scope="module")
def rustc() -> str:
    return judge_rustc()
