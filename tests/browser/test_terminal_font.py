"""The terminal's font is readable at device-pixel-ratio 1: an underscore is drawn, not cut off by the row."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("font_size", [12, 14, 16])
def test_a_row_with_an_underscore_looks_different_from_one_with_a_space_at_dpr_1(page_for, font_size: int) -> None:
    attempt = factories.AttemptFactory.create(
        reservation__expert=factories.expert(username="ada"), workspace_ready_at=timezone.now()
    )
    page = page_for("ada", factories.PASSWORD)
    assert page.evaluate("window.devicePixelRatio") == 1
    page.goto(f"/attempts/{attempt.pk}/")
    expect(page.locator("#terminal-screens .xterm-rows")).to_have_count(1)
    # Written into the page's own xterm.js (as the shell's output would be), with the page's font options.
    page.evaluate(
        """(size) => new Promise((done) => {
             const term = window.rebenchTerminals.get(1).term;
             term.options.fontSize = size;
             term.write('\\x1b[2J\\x1b[Hsnake_case\\r\\nsnake case\\r\\n\\r\\n', done);
           })""",
        font_size,
    )
    rows = page.locator("#terminal-screens .xterm-rows > div")
    expect(rows.nth(0)).to_have_text("snake_case")
    expect(rows.nth(1)).to_have_text("snake case")
    page.wait_for_timeout(100)  # the DOM renderer draws on the next frame
    with_underscore = rows.nth(0).screenshot()
    with_space = rows.nth(1).screenshot()
    assert with_underscore != with_space, "the underscore is invisible: the row cuts it off"
