"""In Chromium: an admin's navigation is grouped by area, fits one line at 1366 px, and each menu opens and leads on."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_an_admins_menus_fit_one_line_open_one_at_a_time_and_lead_to_their_pages(page_for) -> None:
    factories.admin(username="root-admin")
    page = page_for("root-admin", factories.PASSWORD)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto("/leaderboards/")

    nav = page.locator("nav[aria-label=main]")
    links = nav.locator("a:visible, summary:visible")
    tops = {round(box["y"]) for box in (links.nth(i).bounding_box() for i in range(links.count())) if box}
    assert len(tops) == 1, f"the navigation wraps onto {len(tops)} lines"
    expect(page.get_by_role("link", name="Schedule")).to_be_hidden()

    page.locator("#nav-trials > summary").click()
    expect(page.get_by_role("link", name="Schedule")).to_be_visible()
    page.locator("#nav-review > summary").click()  # opening another menu closes the first
    expect(page.get_by_role("link", name="Review queues")).to_be_visible()
    expect(page.get_by_role("link", name="Schedule")).to_be_hidden()

    page.locator("#nav-site > summary").click()
    page.get_by_role("link", name="Audit log").click()
    expect(page).to_have_url(re.compile(r"/audit/$"))


def test_a_reviewer_sees_only_the_review_pages_and_no_admin_menus(page_for) -> None:
    factories.reviewer(username="rita")
    page = page_for("rita", factories.PASSWORD)
    nav = page.locator("nav[aria-label=main]")
    expect(nav.get_by_role("link", name="Review", exact=True)).to_be_visible()
    expect(nav.locator("details.navgroup")).to_have_count(0)
