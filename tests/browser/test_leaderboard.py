"""An admin opens the leaderboards in a real browser: Vega-Lite draws the curves, the tables sort, compute now works."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from graders.leaderboards import services
from tests import factories
from tests.leaderboards.leaderboard_data import ended_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

AGENT = ("claude", "claude-3-5-sonnet", "triframe")


def _board() -> None:
    expert = factories.expert(username="ada")
    chat = factories.environment("ai_rd_nanogpt_chat_rl")
    rust = factories.environment("ai_rd_rust_codecontests_inference")
    for raw in (0.60, 0.70, 0.80):
        ended_run(chat, [(1, 0.55), (5, raw)], user=expert)
    ended_run(rust, [(3, 0.06)], user=expert)
    for raw in (0.56, 0.62, 0.58, 0.66, 0.70):
        ended_run(chat, [(0.5, 0.55), (1.5, raw)], agent=AGENT, hours=2)


def test_the_overview_chart_renders_with_marks_and_tables_sort(page_for) -> None:
    factories.admin(username="root")
    _board()
    page = page_for("root", factories.PASSWORD)
    page.goto("/leaderboards/")
    # Nothing computed yet: the admin computes it from the page.
    expect(page.locator("#no-snapshot")).to_be_visible()
    page.click("#no-snapshot button[type=submit]")
    expect(page.locator("#computed-at")).to_contain_text("Computed at")
    # vega-embed draws SVG; the overall chart has line and area marks for both groups.
    chart = page.locator("#overall-chart svg")
    expect(chart).to_have_count(1)
    expect(page.locator("#overall-chart svg .mark-line path")).to_have_count(2)
    expect(page.locator("#overall-chart svg .mark-area path").first).to_be_attached()
    expect(page.locator("#environment-charts svg")).to_have_count(1)
    # Runs in two of the seven environments: the groups are incomplete, shown apart.
    expect(page.locator("#overall-values")).to_contain_text("No group has runs in every environment yet")
    expect(page.locator("#overall-incomplete")).to_contain_text("Human experts")

    page.goto("/leaderboards/environments/ai_rd_nanogpt_chat_rl/")
    expect(page.locator("#environment-chart svg .mark-line path")).to_have_count(2)
    agents = page.locator("#agents")
    expect(agents).to_contain_text("triframe")
    humans = page.locator("#humans")
    expect(humans.locator("tbody tr")).to_have_count(1)


def test_environment_tables_sort_by_a_clicked_column(page_for) -> None:
    factories.admin(username="root")
    chat = factories.environment("ai_rd_nanogpt_chat_rl")
    for name, raw in (("bea", 0.60), ("cy", 0.80), ("al", 0.70)):
        ended_run(chat, [(1, raw)], user=factories.expert(username=name))
    services.leaderboard_snapshot_create()
    page = page_for("root", factories.PASSWORD)
    page.goto(f"/leaderboards/environments/{chat.slug}/")
    first_cells = page.locator("#humans tbody tr td:first-child")
    page.click("#humans thead th:has-text('Expert')")
    expect(first_cells).to_have_text(["al", "bea", "cy"])
    page.click("#humans thead th:has-text('Best normalised')")
    page.click("#humans thead th:has-text('Best normalised')")  # second click: descending
    expect(first_cells).to_have_text(["cy", "al", "bea"])
