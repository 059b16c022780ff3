"""Who may open each of the environments' pages."""

from __future__ import annotations

import pytest

from tests.role_matrix import ROLES, Page, assert_page_allows_its_roles

PAGES = [
    Page("environments:list", "get", frozenset({"expert", "other_expert", "admin"})),
    Page("environments:detail", "get", frozenset({"expert", "other_expert", "admin"}), "environment"),
    Page("environments:task-family-register", "get", frozenset({"admin"})),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_allows_its_roles_and_refuses_the_others(world, page: Page, role: str) -> None:
    assert_page_allows_its_roles(world, page, role)
