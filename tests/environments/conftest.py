"""Environment tests score through the site: the grading fixtures (private folders, attempts) are shared."""

from tests.graders.conftest import attempt_on, grading_dirs

__all__ = ["attempt_on", "grading_dirs"]
