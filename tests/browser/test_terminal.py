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
from trials.models import Attempt, TerminalSession, Workstation

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


@pytest.fixture
def attempt(asgi_server: str) -> Iterator[Attempt]:
    """A running attempt of ada's on this machine's (local) workstation; its terminals end with the test."""
    from workstation.backends.local import end_attempt_sync

    made = factories.AttemptFactory.create(
        reservation__expert=factories.expert(username="ada"),
        reservation__workstation__backend=Workstation.Backend.LOCAL,
    )
    yield made
    end_attempt_sync(made.pk)


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


def test_the_expert_types_echo_hello_and_an_admin_replays_it(browser, asgi_server, attempt) -> None:
    factories.admin(username="root")
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


def test_an_admins_message_appears_over_the_experts_open_terminal_without_breaking_its_prompt(
    browser, asgi_server, attempt
) -> None:
    factories.admin(username="root")
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


SCREEN = """() => {
    const buffer = window.rebenchTerminals.get(1).term.buffer.active;
    const line = (y) => buffer.getLine(y).translateToString(true);
    const rows = [];
    for (let y = 0; y < buffer.length; y++) rows.push(line(y));
    return {rows, cursorLine: line(buffer.baseY + buffer.cursorY), cursorX: buffer.cursorX, scrollback: buffer.baseY};
}"""


def test_a_tab_that_reattaches_after_ten_thousand_lines_shows_the_screen_and_cursor_it_left(
    browser, asgi_server, attempt
) -> None:
    """The holder replays the output's tail into the new tab's xterm.js: the last lines, the prompt with a
    half-typed command, the cursor after it, and scrollback, so the expert carries on where they were."""
    context, page = login(browser, asgi_server, "ada")
    page.goto(f"/attempts/{attempt.pk}/")
    expect(page.locator("#terminal-status")).to_have_attribute("data-state", "connected")
    page.locator("#terminal-screens .xterm").click()
    expect(page.locator(".xterm-rows")).to_contain_text("$", timeout=15_000)
    page.keyboard.type("seq 1 10000 | sed 's/^/line /'; echo FLOOD$((6*7))DONE")
    page.keyboard.press("Enter")
    expect(page.locator(".xterm-rows")).to_contain_text("FLOOD42DONE", timeout=30_000)
    page.keyboard.type("echo half")  # typed, not entered: the line and the cursor must come back
    expect(page.locator(".xterm-rows")).to_contain_text("echo half")
    before = page.evaluate(SCREEN)
    context.close()

    context, page = login(browser, asgi_server, "ada")
    page.goto(f"/attempts/{attempt.pk}/")
    expect(page.locator("#terminal-status")).to_have_attribute("data-state", "connected")
    expect(page.locator(".xterm-rows")).to_contain_text("FLOOD42DONE", timeout=15_000)
    after = page.evaluate(SCREEN)
    assert after["cursorLine"].endswith("echo half"), after["cursorLine"]
    assert after["cursorX"] == before["cursorX"] == len(before["cursorLine"])
    assert after["cursorLine"] == before["cursorLine"]
    # The visible screen is the one it left: the flood's last lines above the prompt.
    visible = [row for row in after["rows"][after["scrollback"] :] if row]
    assert visible[-2:] == [row for row in before["rows"][before["scrollback"] :] if row][-2:]
    assert "line 10000" in after["rows"]
    # Scrollback came back too (a long way up, though not all ten thousand lines need to).
    assert after["scrollback"] > 500
    assert any(row == "line 9000" for row in after["rows"])
    # And the shell is the same one: finishing the line runs it.
    page.locator("#terminal-screens .xterm").click()
    page.keyboard.type(" way")
    page.keyboard.press("Enter")
    expect(page.locator(".xterm-rows > div").filter(has_text=re.compile(r"^\s*half way\s*$"))).to_have_count(1)
    context.close()
