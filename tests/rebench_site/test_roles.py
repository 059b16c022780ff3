"""Who may open the site's own pages (accounts, the audit log), where home sends each role, and
that every named page of every app is in some app's role matrix."""

from __future__ import annotations

import pytest
from django.test import Client

from tests import factories
from tests.environments.test_roles import PAGES as ENVIRONMENTS_PAGES
from tests.graders.test_roles import PAGES as GRADERS_PAGES
from tests.leaderboards.test_roles import PAGES as LEADERBOARDS_PAGES
from tests.review.test_roles import PAGES as REVIEW_PAGES
from tests.role_matrix import PUBLIC, ROLES, Page, assert_page_allows_its_roles, client_for, url_names
from tests.trials.test_roles import PAGES as TRIALS_PAGES

PAGES = [
    # Accounts: every logged-in user changes their own password (the reset pages are public, below).
    Page("password_change", "get", frozenset({"expert", "other_expert", "reviewer", "admin"})),
    Page("password_change_done", "get", frozenset({"expert", "other_expert", "reviewer", "admin"})),
    # Every logged-in user picks the zone their pages show times in.
    Page("time_zone", "get", frozenset({"expert", "other_expert", "reviewer", "admin"})),
    Page("audit-log", "get", frozenset({"admin"})),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_allows_its_roles_and_refuses_the_others(world, page: Page, role: str) -> None:
    assert_page_allows_its_roles(world, page, role)


ALL_PAGES = TRIALS_PAGES + ENVIRONMENTS_PAGES + GRADERS_PAGES + LEADERBOARDS_PAGES + REVIEW_PAGES + PAGES


def test_every_named_page_is_in_an_apps_role_matrix() -> None:
    covered = {page.name for page in ALL_PAGES} | PUBLIC
    assert url_names() - covered == set()


@pytest.mark.parametrize(
    ("role", "lands_on"),
    [("expert", "/my/"), ("reviewer", "/review/"), ("admin", "/schedule/")],
)
def test_home_sends_each_role_to_its_own_start_page(world, role: str, lands_on: str) -> None:
    users, _ = world
    response = client_for(role, users).get("/")
    assert response.status_code == 302
    assert response["Location"] == lands_on


def test_home_tells_a_user_without_a_role_to_ask_an_admin(db) -> None:
    client = Client()
    client.force_login(factories.UserFactory.create(username="nobody"))
    response = client.get("/")
    assert response.status_code == 403
    assert b"No role yet" in response.content


def test_django_admin_is_for_staff_only(world) -> None:
    users, _ = world
    assert client_for("admin", users).get("/admin/").status_code == 200
    response = client_for("expert", users).get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_navigation_shows_each_role_its_own_pages(world) -> None:
    users, _ = world
    expert_nav = client_for("expert", users).get("/my/").content.decode()
    assert "Book a slot" in expert_nav
    assert "Schedule" not in expert_nav
    admin_nav = client_for("admin", users).get("/schedule/").content.decode()
    assert "Workstations" in admin_nav
    assert "Book a slot" not in admin_nav
    reviewer_nav = client_for("reviewer", users).get("/review/").content.decode()
    assert "Review" in reviewer_nav
    assert "Schedule" not in reviewer_nav
    assert "Book a slot" not in reviewer_nav
