"""The browser terminal in Debian's Chromium against a real ASGI server: type, see, replay."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.trials import terminal_support as ts
from trials.models import TerminalSession, Workstation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def asgi_server(transactional_db, settings) -> Iterator[str]:
    """uvicorn serving the project's ASGI app (HTTP and WebSockets) in a thread of this process."""
    import uvicorn

    from rebench_site.asgi import application

    root = ts.make_dirs(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(application, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    ts.cleanup_dirs(root)


def login(browser, base_url: str, username: str):
    context = browser.new_context(base_url=base_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return context, page


def test_the_expert_types_echo_hello_and_an_admin_replays_it(browser, asgi_server) -> None:
    expert = factories.expert(username="ada")
    factories.admin(username="root")
    attempt = factories.AttemptFactory.create(
        reservation__expert=expert, reservation__workstation__backend=Workstation.Backend.LOCAL
    )
    try:
        context, page = login(browser, asgi_server, "ada")
        page.goto(f"/attempts/{attempt.pk}/")
        expect(page.locator("#terminal-recorded")).to_contain_text("recorded")
        expect(page.locator("#terminal-status")).to_have_attribute("data-state", "connected")
        page.locator("#terminal-screens .xterm").click()
        expect(page.locator(".xterm-rows")).to_contain_text("$", timeout=15_000)
        page.keyboard.type("echo hel''lo")
        page.keyboard.press("Enter")
        # A row that is exactly "hello": the output, not the typed command (which reads hel''lo).
        expect(page.locator(".xterm-rows > div").filter(has_text=re.compile(r"^\s*hello\s*$"))).to_have_count(1)
        # The second tab is a second shell; the first keeps running.
        page.click("#terminal-new-tab")
        expect(page.locator("#terminal-tabs button")).to_have_count(2)
        expect(page.locator("#terminal-status")).to_have_attribute("data-state", "connected")
        context.close()  # the socket drops; the recording gets its disconnect marker and is flushed

        session = TerminalSession.objects.get(attempt=attempt, number=1)
        admin_context, admin = login(browser, asgi_server, "root")
        admin.goto(f"/attempts/{attempt.pk}/")
        admin.click("[data-replay='1']")
        expect(admin).to_have_url(re.compile(rf"/attempts/{attempt.pk}/recordings/\?terminal=1$"))
        expect(admin.locator("#activity-summary")).to_contain_text("1 active minute")
        admin.locator("#player").click()  # play
        expect(admin.locator("#player")).to_contain_text("hello", timeout=15_000)
        with admin.expect_download() as download_info:
            admin.click("#cast-download")
        cast = download_info.value.path().read_text()
        assert cast.startswith('{"version": 2')
        assert session.recording_name.endswith("terminal-1.cast")
        admin_context.close()
    finally:
        from workstation.backends.local import end_attempt_sync

        end_attempt_sync(attempt.pk)


def test_an_admins_message_appears_over_the_experts_open_terminal_without_breaking_its_prompt(
    browser, asgi_server
) -> None:
    expert = factories.expert(username="ada")
    factories.admin(username="root")
    attempt = factories.AttemptFactory.create(
        reservation__expert=expert, reservation__workstation__backend=Workstation.Backend.LOCAL
    )
    try:
        context, page = login(browser, asgi_server, "ada")
        page.goto(f"/attempts/{attempt.pk}/")
        expect(page.locator("#terminal-status")).to_have_attribute("data-state", "connected")
        expect(page.locator("#terminal-notice")).to_be_hidden()
        expect(page.locator("#terminal-message-form")).to_have_count(0)

        admin_context, admin = login(browser, asgi_server, "root")
        admin.goto(f"/attempts/{attempt.pk}/")
        admin.fill("#terminal-admin-message", "the workstation reboots at noon")
        admin.click("#terminal-message-form button[type=submit]")
        expect(admin.locator("body")).to_contain_text("Message sent")

        expect(page.locator("#terminal-notice")).to_be_visible()
        expect(page.locator("#terminal-notice")).to_contain_text("Message from root: the workstation reboots at noon")
        # Over the terminal, not in it: a line the shell doesn't know about would leave its prompt dangling.
        expect(page.locator(".xterm-rows")).not_to_contain_text("the workstation reboots at noon")
        expect(page.locator("#terminal-notice time")).to_have_text(re.compile(r"\d{1,2}:\d{2}"))
        page.click("#terminal-notice button")
        expect(page.locator("#terminal-notice")).to_be_hidden()
        admin_context.close()
        context.close()
    finally:
        from workstation.backends.local import end_attempt_sync

        end_attempt_sync(attempt.pk)
