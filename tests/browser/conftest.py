"""Playwright against a live server, in Debian's Chromium (no browser download)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium per browser test module.

    Not per session: while Playwright's sync API is open it keeps an event loop running in this
    thread, and every later test in the run that calls async_to_sync (services sending to terminals,
    Celery tasks run in-process) would then fail with "cannot use AsyncToSync in the same thread as
    an async event loop". Closing it at the end of each module ends the loop, and the async guard
    lifted below is put back.
    """
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install chromium (CI does)")
    # The ORM calls the tests make between browser steps are ordinary synchronous code run while
    # Playwright's loop runs in this thread, so Django's async guard is lifted for the module.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
            )
            yield browser
            browser.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture
def page_for(browser, live_server):
    """page_for(username, password) -> a logged-in page in a fresh browser context.

    Every page is watched for Content-Security-Policy violations: a page whose own code the policy
    blocks fails the test. A test that provokes violations on purpose reads and clears
    `page_for.csp_violations`.
    """
    contexts = []
    violations: list[str] = []

    def watch(message) -> None:
        if "Content Security Policy" in message.text:
            violations.append(f"{message.page.url if message.page else '?'}: {message.text}")

    def open_page(username: str, password: str):
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(10_000)
        context.on("console", watch)
        contexts.append(context)
        page = context.new_page()
        page.goto("/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return page

    open_page.csp_violations = violations  # type: ignore[attr-defined]  # on the page, for the tests to read
    yield open_page
    for context in contexts:
        context.close()
    assert violations == [], "the Content-Security-Policy blocked the page's own code"
