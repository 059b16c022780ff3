"""In Chromium: the browser's zone reaches the server (the `tz` cookie site.js sets) and pages show times in it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

# 12:00 UTC on a winter day: 07:00 in New York (UTC-5).
NOON_UTC = datetime(2200, 1, 15, 12, 0, tzinfo=UTC)


def test_a_browser_in_new_york_sees_its_reservation_at_new_york_time_and_the_zone_named(browser, live_server) -> None:
    expert = factories.expert(username="ada")
    reservation = factories.ReservationFactory.create(expert=expert, starts_at=NOON_UTC)
    context = browser.new_context(base_url=live_server.url, timezone_id="America/New_York")
    context.set_default_timeout(10_000)
    violations: list[str] = []
    context.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        page = context.new_page()
        page.goto("/accounts/login/")  # the first page sets the cookie; the ones after it use it
        assert {c["name"]: c["value"] for c in context.cookies()}.get("tz") == "America/New_York"
        page.fill("#id_username", "ada")
        page.fill("#id_password", factories.PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        page.goto("/my/")
        row = page.locator(f"tr[data-reservation='{reservation.pk}']")
        expect(row).to_contain_text("Wed 15 Jan 2200 07:00")
        expect(page.locator("thead")).to_contain_text("Slot (America/New_York)")
        expect(page.locator("#time-zone")).to_have_text("America/New_York")
    finally:
        context.close()
    assert violations == [], "the Content-Security-Policy blocked the page's own code"
