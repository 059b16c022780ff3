"""Who may open each of review's pages: labelling, queues, imports, the classifier and the red-team tool."""

from __future__ import annotations

import pytest

from tests.role_matrix import ROLES, Page, assert_page_allows_its_roles

PAGES = [
    Page("review:home", "get", frozenset({"reviewer", "admin"})),
    # Review queues: reviewers label; admins build queues, read quality, import.
    Page("review:label", "get", frozenset({"reviewer"}), "review_queue"),
    Page("review:item-next", "get", frozenset({"reviewer"}), "review_queue"),
    Page("review:label-submit", "post", frozenset({"reviewer"}), "review_queue"),
    Page("review:label-skip", "post", frozenset({"reviewer"}), "review_queue"),
    Page("review:label-undo", "post", frozenset({"reviewer"}), "review_queue"),
    Page("review:lease-renew", "post", frozenset({"reviewer"}), "review_queue"),
    Page("review:lease-release", "post", frozenset({"reviewer"}), "review_queue"),
    Page("review:my-labels", "get", frozenset({"reviewer"})),
    Page("review:label-edit", "post", frozenset({"reviewer"}), "review_label"),
    Page("review:completions", "get", frozenset({"admin"})),
    Page("review:queues", "get", frozenset({"admin"})),
    Page("review:queue-new", "get", frozenset({"admin"})),
    Page("review:queue", "get", frozenset({"admin"}), "review_queue"),
    Page("review:queue-export", "get", frozenset({"admin"}), "review_queue"),
    Page("review:queue-close", "post", frozenset({"admin"}), "review_queue"),
    Page("review:reviewers", "get", frozenset({"admin"})),
    Page("review:import", "get", frozenset({"admin"})),
    Page("review:import-job", "get", frozenset({"admin"}), "review_import"),
    # Review classifier: versions, threshold and dashboard for admins; the red-team tool for reviewers.
    Page("classifier:versions", "get", frozenset({"admin"})),
    Page("classifier:_versions", "get", frozenset({"admin"})),
    Page("classifier:train", "post", frozenset({"admin"})),
    Page("classifier:activate", "post", frozenset({"admin"})),
    Page("classifier:threshold", "get", frozenset({"admin"})),
    Page("classifier:dashboard", "get", frozenset({"admin"})),
    Page("classifier:red-team", "get", frozenset({"reviewer", "admin"})),
    Page("classifier:red-team-start", "post", frozenset({"reviewer", "admin"})),
    Page("classifier:red-team-submit", "post", frozenset({"reviewer", "admin"})),
    Page("classifier:red-team-attempt", "get", frozenset({"reviewer"}), "red_team_attempt"),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_allows_its_roles_and_refuses_the_others(world, page: Page, role: str) -> None:
    assert_page_allows_its_roles(world, page, role)
