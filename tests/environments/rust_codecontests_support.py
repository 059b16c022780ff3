"""ai_rd_rust_codecontests_inference's scripts as its tests (test_rust_codecontests_judge, _scorer) drive them: the
judge, the scripted model and the problem generator, and the rustc the judge uses.
"""

from __future__ import annotations

from pathlib import Path

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


def judge_rustc() -> str:
    """The rustc the judge will use; the test is skipped, saying why, where it finds none."""
    try:
        return judge.find_rustc()
    except judge.JudgeUnavailable:
        pytest.skip(MISSING_TOOL_REASONS["rustc"])
