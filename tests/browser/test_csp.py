"""In Chromium: the Content-Security-Policy blocks injected code, and the account pages work under it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

NEW_PASSWORD = "a-new-and-longer-passphrase"

INJECT = """() => {
  window.__violations = [];
  document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective));
  const script = document.createElement("script");
  script.textContent = "window.__injectedScriptRan = true;";
  document.body.appendChild(script);
  // What an unescaped user text would become: markup with an event handler.
  const div = document.createElement("div");
  div.innerHTML = '<img src="/no-such-image.png" onerror="window.__injectedHandlerRan = true">';
  document.body.appendChild(div);
}"""


def test_an_injected_inline_script_and_event_handler_are_blocked_and_reported(page_for) -> None:
    factories.expert(username="ada")
    page = page_for("ada", factories.PASSWORD)
    expect(page.locator("#change-password")).to_be_visible()  # logged in, on a real page of the site

    page.evaluate(INJECT)
    page.wait_for_function("window.__violations.length >= 2")

    assert page.evaluate("window.__injectedScriptRan") is None
    assert page.evaluate("window.__injectedHandlerRan") is None
    assert set(page.evaluate("window.__violations")) <= {"script-src-elem", "script-src-attr", "script-src"}
    assert any("inline" in v for v in page_for.csp_violations)  # the console says it too
    page_for.csp_violations.clear()  # provoked on purpose; anything else still fails the test


def test_an_expert_changes_the_password_from_the_account_link(page_for) -> None:
    factories.expert(username="ada")
    page = page_for("ada", factories.PASSWORD)
    page.click("#change-password")
    page.fill("#id_old_password", factories.PASSWORD)
    page.fill("#id_new_password1", NEW_PASSWORD)
    page.fill("#id_new_password2", NEW_PASSWORD)
    page.click("#password-change-form button[type=submit]")
    expect(page.locator("#password-changed")).to_contain_text("Every other session of your account has been logged out")
    # Still logged in here.
    page.goto("/")
    expect(page.locator(".who")).to_have_text("ada")


def test_a_locked_out_login_shows_when_to_try_again(page_for, browser, live_server) -> None:
    factories.expert(username="ada")
    context = browser.new_context(base_url=live_server.url)
    try:
        page = context.new_page()
        page.goto("/accounts/login/")
        for _ in range(5):
            page.fill("#id_username", "ada")
            page.fill("#id_password", "wrong-password")
            page.click("button[type=submit]")
            page.wait_for_load_state()
        expect(page.locator("#locked-out")).to_contain_text("Too many wrong passwords")
        expect(page.locator("#locked-out")).to_contain_text("Try again after")
        page.click("#locked-out a[href='/accounts/password/reset/']")
        expect(page.locator("h1")).to_have_text("Reset your password")
    finally:
        context.close()


def test_an_admin_forces_a_reset_from_the_user_page(page_for) -> None:
    factories.UserFactory.create(username="boss", is_staff=True, is_superuser=True)
    expert = factories.expert(username="ada")
    page = page_for("boss", factories.PASSWORD)
    page.goto(f"/admin/auth/user/{expert.pk}/change/")
    page.click("#force-password-reset")
    page.click("input[type=submit][value^='Yes, reset']")
    expect(page.locator("#forced-resets")).to_contain_text("mailed to ada@example.test")
    expert.refresh_from_db()
    assert not expert.has_usable_password()


def test_a_select_marked_autosubmit_submits_its_form_without_an_inline_handler(page_for) -> None:
    from graders.models import ScoringJob

    factories.admin(username="root")
    page = page_for("root", factories.PASSWORD)
    page.goto("/grading/jobs/")
    value = ScoringJob.Status.choices[-1][0]
    with page.expect_navigation():
        page.select_option("#status", value)
    assert page.url.endswith(f"/grading/jobs/?status={value}")


def test_cancelling_a_data_confirm_question_keeps_the_form_unsent(page_for) -> None:
    expert = factories.expert(username="ada")
    attempt = factories.AttemptFactory.create(reservation__expert=expert)
    page = page_for("ada", factories.PASSWORD)
    page.goto(f"/attempts/{attempt.pk}/")
    questions = []

    def dismiss(dialog) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.click("#submit-button")
    expect(page.locator("#clock-state")).to_contain_text("running")
    assert questions == ["Submit now? The attempt ends and the clock stops for good."]
    attempt.refresh_from_db()
    assert attempt.ended_at is None
