"""The attempt page as a workspace: the bar stays in view, the terminal fills the window, changes arrive live."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from graders.models import ScoreLogEntry
from tests import factories
from trials import services
from trials.models import Attempt, Reservation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 768}


def in_view(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    viewport = page.viewport_size
    return (
        box is not None
        and box["y"] >= 0
        and box["y"] + box["height"] <= viewport["height"]
        and box["x"] + box["width"] <= viewport["width"]
    )


def open_attempt(page_for, **attempt_kwargs):
    attempt = factories.AttemptFactory.create(
        reservation__expert=factories.expert(username="ada"), workspace_ready_at=timezone.now(), **attempt_kwargs
    )
    page = page_for("ada", factories.PASSWORD)
    page.set_viewport_size(LAPTOP)
    page.goto(f"/attempts/{attempt.pk}/")
    expect(page.locator("#countdown")).to_have_attribute("data-state", "running")
    # Set on this document only: still there later means the page was never reloaded.
    page.evaluate("window.sameDocument = 'yes'")
    return attempt, page


def test_the_countdown_and_the_actions_stay_in_view_at_1366_by_768_and_the_terminal_takes_the_width(page_for) -> None:
    _, page = open_attempt(page_for)
    for selector in ("#countdown", "#clock-state", "#pause-button", "#submit-button"):
        assert in_view(page, selector), f"{selector} is below the fold"
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_timeout(200)
    assert page.evaluate("window.scrollY") > 0, "the page is taller than the window, so this scrolled"
    for selector in ("#countdown", "#submit-button"):
        assert in_view(page, selector), f"{selector} scrolled away with the page"
    width = page.locator("#terminal-screens").bounding_box()["width"]
    assert width > LAPTOP["width"] - 120, f"the terminal is capped at a column ({width} px)"


def test_full_screen_gives_the_terminal_the_window_and_keeps_the_countdown(page_for) -> None:
    _, page = open_attempt(page_for)
    before = page.locator("#terminal-screens").bounding_box()["height"]
    page.click("#fullscreen-button")
    expect(page.locator("#attempt-workspace")).to_have_class("attempt-workspace full")
    after = page.locator("#terminal-screens").bounding_box()
    assert after["height"] > before
    assert after["height"] > LAPTOP["height"] - 160
    assert in_view(page, "#countdown")
    assert in_view(page, "#submit-button")
    page.click("#fullscreen-button")
    expect(page.locator("#attempt-workspace")).to_have_class("attempt-workspace")
    expect(page.locator("#fullscreen-button")).to_have_text("Full screen")


def test_a_score_arriving_updates_the_page_without_a_reload_and_keeps_an_unsent_note(page_for) -> None:
    attempt, page = open_attempt(page_for)
    page.fill("textarea[name=body]", "half-written: the blocked scan is")
    expect(page.locator("#score-log tbody tr.valid")).to_have_count(0)

    ScoreLogEntry.objects.create(attempt=attempt, scored_at=timezone.now(), elapsed_seconds=600, score=1.5)

    expect(page.locator("#score-log tbody tr.valid")).to_have_count(1, timeout=15_000)
    assert page.evaluate("window.sameDocument") == "yes", "the page reloaded"
    assert page.input_value("textarea[name=body]") == "half-written: the blocked scan is"


def test_pausing_from_the_bar_changes_the_state_in_place(page_for) -> None:
    _, page = open_attempt(page_for)
    page.click("#pause-button")
    expect(page.locator("#clock-state")).to_contain_text("paused")
    expect(page.locator("#attempt-flash")).to_contain_text("Paused")
    stood = page.locator("#countdown").inner_text()
    page.wait_for_timeout(1300)
    assert page.locator("#countdown").inner_text() == stood, "the countdown stands still while paused"
    page.click("#resume-button")
    expect(page.locator("#clock-state")).to_contain_text("running")
    assert page.evaluate("window.sameDocument") == "yes", "the page reloaded"


def test_an_attempt_ended_elsewhere_turns_into_its_summary_without_a_reload(page_for) -> None:
    attempt, page = open_attempt(page_for)
    expect(page.locator("#terminal-panel")).to_have_count(1)
    admin = factories.admin(username="root")
    services.attempt_end_by_admin(attempt=Attempt.objects.get(pk=attempt.pk), by=admin)

    expect(page.locator("#ended-summary")).to_be_visible(timeout=15_000)
    expect(page.locator("#terminal-panel")).to_have_count(0)
    expect(page.locator("#countdown")).to_have_text("ended")
    expect(page.locator("#submit-button")).to_have_count(0)
    assert page.evaluate("window.sameDocument") == "yes", "the page reloaded"


def test_submitting_early_frees_the_slot_for_another_expert_to_book_now(page_for, settings) -> None:
    # No margin for the final scoring: the slot is given back the moment the attempt ends.
    settings.RESERVATION_RELEASE_MARGIN = timedelta(0)
    attempt, page = open_attempt(page_for)
    factories.expert(username="grace")
    other = page_for("grace", factories.PASSWORD)
    card = f"[data-workstation='{attempt.workstation.name}']"
    other.goto(f"/book/{attempt.environment.slug}/")
    expect(other.locator(card)).to_have_count(1)
    expect(other.locator(f"{card} button[data-slot='now']")).to_have_count(0)

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#submit-button")
    expect(page.locator("#countdown")).to_have_attribute("data-state", "ended")
    assert page.evaluate("window.sameDocument") == "yes"

    other.goto(f"/book/{attempt.environment.slug}/")
    other.click(f"{card} button[data-slot='now']")
    expect(other.locator("body")).to_contain_text(f"Booked {attempt.environment.title} on {attempt.workstation.name}")
    booked = Reservation.objects.filter(expert__username="grace").get()
    ended = Attempt.objects.get(pk=attempt.pk)
    assert ended.ended_at is not None
    assert booked.starts_at >= ended.ended_at - timedelta(seconds=1)
    assert Reservation.objects.get(pk=attempt.reservation_id).ends_at <= booked.starts_at
