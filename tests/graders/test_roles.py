"""Who may open each of grading's pages: scoring jobs and run imports (leaderboards: tests/leaderboards)."""

from __future__ import annotations

import pytest

from tests.role_matrix import ROLES, Page, assert_page_allows_its_roles

PAGES = [
    # Grading.
    Page("graders:attempt-score", "post", frozenset({"expert", "admin"}), "attempt"),
    Page("graders:attempt-scores", "get", frozenset({"expert", "admin"}), "attempt"),
    Page("graders:jobs", "get", frozenset({"admin"})),
    Page("graders:job-rerun", "post", frozenset({"admin"})),
    Page("graders:job-close", "post", frozenset({"admin"})),
    Page("graders:manual-scores", "get", frozenset({"admin"})),
    # Run imports: admins only.
    Page("run_imports:list", "get", frozenset({"admin"})),
    Page("run_imports:rows", "get", frozenset({"admin"})),
    Page("run_imports:detail", "get", frozenset({"admin"}), "run_import"),
    Page("run_imports:progress", "get", frozenset({"admin"}), "run_import"),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_allows_its_roles_and_refuses_the_others(world, page: Page, role: str) -> None:
    assert_page_allows_its_roles(world, page, role)
