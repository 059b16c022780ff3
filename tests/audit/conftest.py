"""The grading fixtures, for the scoring-job actions."""

from tests.graders.conftest import attempt_on, grading_dirs  # noqa: F401 - fixtures, registered by import
