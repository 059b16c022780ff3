"""Who may open each of the leaderboards' pages: admins; an expert has "My results" and exports of their own rows."""

from __future__ import annotations

import pytest

from tests.role_matrix import ROLES, Page, assert_page_allows_its_roles

PAGES = [
    Page("leaderboards:overview", "get", frozenset({"admin"})),
    Page("leaderboards:environment", "get", frozenset({"admin"}), "environment"),
    Page("leaderboards:mine", "get", frozenset({"expert", "other_expert", "admin"})),
    Page("leaderboards:compute", "post", frozenset({"admin"})),
    Page("leaderboards:export", "get", frozenset({"expert", "other_expert", "admin"}), "leaderboard_export"),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_allows_its_roles_and_refuses_the_others(world, page: Page, role: str) -> None:
    assert_page_allows_its_roles(world, page, role)
