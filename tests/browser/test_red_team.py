"""A reviewer red-teams the classifier in the browser: the score follows their typing, tokens offer replacements."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from review.classifier.models import RedTeamAttempt
from review.models import Completion
from tests import factories
from tests.review.classifier import conftest as classifier_fixtures
from tests.review.classifier.conftest import INJURIOUS

# The classifier tests' fixtures: a version trained on their small set, active, threshold 0.5.
classifier_settings = classifier_fixtures.classifier_settings
active_classifier = classifier_fixtures.active_classifier
_one_torch_thread = classifier_fixtures._one_torch_thread

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAFE_REWRITE = "They shared a quiet picnic by the river."


def test_typing_updates_the_live_score_and_a_passing_rewrite_reaches_the_verify_queue(
    page_for, active_classifier, reviewer
) -> None:
    start = Completion.objects.get(text=INJURIOUS[0])
    page = page_for(reviewer.username, factories.PASSWORD)
    page.goto("/review/red-team/")
    page.locator(f"#start-completions input[value='{start.pk}'] + button").click()
    page.wait_for_url("**/review/red-team/*/")
    score = page.locator("#rt-score")
    expect(score).not_to_have_text("—")
    first = float(score.inner_text())
    assert first > 0.5
    expect(page.locator("#rt-verdict")).to_have_text("filtered out")
    # One highlighted button per wordpiece the tokenizer made of the completion.
    expect(page.locator("#rt-tokens .rt-token")).to_have_count(len(INJURIOUS[0].replace(",", " ,").split()) + 1)

    # Clicking a token lists replacements with their exact scores.
    page.locator("#rt-tokens .rt-token", has_text="broke").click()
    expect(page.locator("#rt-subs-table tbody tr").first).to_be_visible(timeout=30_000)

    page.locator("#rt-text").fill("")
    page.locator("#rt-text").press_sequentially(SAFE_REWRITE, delay=5)
    expect(page.locator("#rt-verdict")).to_have_text("passes the classifier", timeout=20_000)
    assert float(score.inner_text()) < 0.5

    page.locator("#rt-submit").click()
    page.wait_for_url("**/review/red-team/")
    expect(page.locator(".messages")).to_contain_text("It is in the verify queue")
    attempt = RedTeamAttempt.objects.get()
    assert attempt.rewrite.text == SAFE_REWRITE
    assert attempt.rewrite.source == Completion.Source.RED_TEAM
    assert attempt.start_completion == start


def test_the_red_team_editor_keeps_a_draft_across_a_reload_and_submit_waits_for_a_passing_score(
    page_for, active_classifier, reviewer
) -> None:
    start = Completion.objects.get(text=INJURIOUS[0])
    page = page_for(reviewer.username, factories.PASSWORD)
    page.goto("/review/red-team/")
    page.locator(f"#start-completions input[value='{start.pk}'] + button").click()
    page.wait_for_url("**/review/red-team/*/")
    attempt = RedTeamAttempt.objects.get()
    submit = page.locator("#rt-submit")
    reason = page.locator("#rt-submit-reason")

    # The starting text is filtered out: Submit is disabled and says why.
    expect(page.locator("#rt-verdict")).to_have_text("filtered out")
    expect(submit).to_be_disabled()
    expect(reason).to_contain_text("at or above the threshold 0.5000")
    expect(page.locator("#rt-draft")).to_be_hidden()

    page.locator("#rt-text").fill("")
    page.locator("#rt-text").press_sequentially(SAFE_REWRITE, delay=5)
    expect(page.locator("#rt-verdict")).to_have_text("passes the classifier", timeout=20_000)
    expect(submit).to_be_enabled()
    expect(reason).to_have_text("")

    # A reload (or a crash) keeps the edit: it comes back, is scored again, and may be submitted.
    page.reload()
    expect(page.locator("#rt-text")).to_have_value(SAFE_REWRITE)
    expect(page.locator("#rt-draft")).to_be_visible()
    expect(page.locator("#rt-verdict")).to_have_text("passes the classifier", timeout=20_000)
    expect(submit).to_be_enabled()

    # The draft is this user's for this attempt only.
    key = f"rt-draft:{reviewer.pk}:{attempt.pk}"
    assert page.evaluate("(key) => JSON.parse(localStorage.getItem(key)).text", key) == SAFE_REWRITE

    submit.click()
    page.wait_for_url("**/review/red-team/")
    expect(page.locator(".messages")).to_contain_text("It is in the verify queue")
    attempt.refresh_from_db()
    assert attempt.rewrite.text == SAFE_REWRITE
    # Submitted: the draft is gone, so nothing is restored anywhere later.
    assert page.evaluate("(key) => localStorage.getItem(key)", key) is None


def test_discarding_a_restored_draft_goes_back_to_the_starting_text(page_for, active_classifier, reviewer) -> None:
    start = Completion.objects.get(text=INJURIOUS[0])
    page = page_for(reviewer.username, factories.PASSWORD)
    page.goto("/review/red-team/")
    page.locator(f"#start-completions input[value='{start.pk}'] + button").click()
    page.wait_for_url("**/review/red-team/*/")
    page.locator("#rt-text").press("End")
    page.locator("#rt-text").press_sequentially(" Then he laughed.", delay=5)
    page.reload()
    expect(page.locator("#rt-text")).to_have_value(INJURIOUS[0] + " Then he laughed.")
    page.locator("#rt-draft-discard").click()
    expect(page.locator("#rt-text")).to_have_value(INJURIOUS[0])
    expect(page.locator("#rt-draft")).to_be_hidden()
    expect(page.locator("#rt-submit")).to_be_disabled()
    page.reload()
    expect(page.locator("#rt-text")).to_have_value(INJURIOUS[0])
    expect(page.locator("#rt-draft")).to_be_hidden()
