"""Recording with no tab attached, storage, endings with no tab open, admin messages, keys typed before the shell."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.files.storage import storages
from django.test import Client
from django.urls import reverse

from rebench_site.celery import app as celery_app
from tests import factories
from tests.trials import terminal_support as ts
from tests.trials.ssh_server import ssh_server
from trials import recording, services, tasks
from trials.models import Attempt, TerminalSession, Workstation
from workstation.layout import sandbox_name

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


@pytest.fixture
def eager_tasks(monkeypatch):
    """Tasks queued after commit run at once, in this process: the real task, without a worker."""
    # Under the CELERY_ namespace the prefixed name wins, so the override goes in under it, into
    # the changes of a configuration already loaded (the first read loads it, replacing `changes`).
    assert not celery_app.conf.task_always_eager
    monkeypatch.setitem(celery_app.conf.changes, "CELERY_TASK_ALWAYS_EAGER", True)
    assert celery_app.conf.task_always_eager


def session_of(attempt: Attempt) -> TerminalSession:
    return TerminalSession.objects.get(attempt=attempt, number=1)


def printed(events: list[list[Any]]) -> str:
    return "".join(e[2] for e in events if e[1] == "o")


COUNT = 3000
SEQUENCE = "\r\n".join(str(i) for i in range(1, COUNT + 1))


@ts.sync
async def test_output_printed_while_no_tab_is_attached_is_recorded_byte_for_byte_and_once(local_attempt) -> None:
    screen = await ts.open_screen(ts.router(), local_attempt.pk, local_attempt.user)
    await screen.ready()
    # Printed a second after the tab goes away, finished long before the next one comes.
    await screen.type(f"(sleep 1; seq 1 {COUNT}; echo AWAY$((6*7))) &\r")
    await asyncio.sleep(0.3)
    await screen.comm.disconnect()
    await asyncio.sleep(2.5)

    again = await ts.open_screen(ts.router(), local_attempt.pk, local_attempt.user)
    await again.message("hello")
    await again.message("status")
    await asyncio.sleep(0.3)
    start = len(again.output)
    await again.type("echo BACK$((6*7))\r")
    await again.until("BACK42", start=start)
    await again.comm.disconnect()

    session = await database_sync_to_async(session_of)(local_attempt)
    _header, events = await asyncio.to_thread(recording.read_cast, session.recording_name)
    out = printed(events)
    assert SEQUENCE in out, "output printed with no tab attached must be in the recording, every byte"
    assert out.count("AWAY42") == 1, "recorded once, never once per tab"
    assert out.count("BACK42") == 1
    assert [e[2] for e in events if e[1] == "m"] == ["connect", "disconnect", "reconnect", "disconnect"]
    times = [e[0] for e in events]
    assert times == sorted(times)


@ts.sync
async def test_two_tabs_on_one_terminal_record_its_output_once(local_attempt) -> None:
    first = await ts.open_screen(ts.router(), local_attempt.pk, local_attempt.user)
    await first.ready()
    second = await ts.open_screen(ts.router(), local_attempt.pk, local_attempt.user)
    await second.message("status")
    start = len(first.output)
    await first.type("echo TWICE$((6*7))\r")
    await first.until("TWICE42", start=start)
    await second.until("TWICE42")
    await first.comm.disconnect()
    await second.comm.disconnect()
    session = await database_sync_to_async(session_of)(local_attempt)
    _header, events = await asyncio.to_thread(recording.read_cast, session.recording_name)
    assert printed(events).count("TWICE42") == 1


@ts.sync
async def test_the_recording_goes_to_storage_in_closed_chunks_then_one_cast_when_the_attempt_ends(
    local_attempt, settings, eager_tasks
) -> None:
    settings.TERMINAL_RECORDING_UPLOAD_SECONDS = 0.5
    store = storages["default"]
    screen = await ts.open_screen(ts.router(), local_attempt.pk, local_attempt.user)
    await screen.ready()
    start = len(screen.output)
    await screen.type("echo STOR''ED\r")
    await screen.until("STORED", start=start)
    session = await database_sync_to_async(session_of)(local_attempt)
    name = session.recording_name
    prefix = recording.parts_prefix(name)
    # The consumer's timer uploads closed chunks while the tab is open: wait (on a loaded machine the
    # timer's uploads can come late) until both streams have a part, or the deadline says they never did.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        names = store.listdir(prefix)[1] if store.exists(prefix) else []
        if all(any(p.startswith(f"{kind}-") for p in names) for kind in ("output", "events")):
            break
        await screen.drain(0.1)
    parts = store.listdir(prefix)[1]
    assert "header.json" in parts
    assert any(p.startswith("output-") for p in parts)
    assert any(p.startswith("events-") for p in parts)
    assert not store.exists(name), "no final file while the attempt runs"
    # While it runs, the replay reads parts and spool merged: already complete.
    _header, events = await asyncio.to_thread(recording.read_cast, name)
    assert "STORED" in printed(events)

    await database_sync_to_async(services.attempt_submit)(attempt=local_attempt, by=local_attempt.user)
    while screen.closed_code is None:
        assert await screen.pump_once(5)

    assert store.exists(name), "the ended attempt's recording is one .cast in storage"
    assert not store.exists(prefix) or not store.listdir(prefix)[1], "its parts are gone"
    assert not recording.spool_dir(name).exists(), "and so is the spool"
    with store.open(name, "rb") as f:
        lines = f.read().decode().splitlines()
    header, events = await asyncio.to_thread(recording.read_cast, name)
    assert header["version"] == 2
    assert len(lines) == len(events) + 1
    assert "STORED" in printed(events)
    assert "echo STOR''ED" in "".join(e[2] for e in events if e[1] == "i")


@ts.sync
async def test_ending_an_attempt_with_no_tab_open_ends_its_local_holder_and_keeps_the_recording(
    local_attempt, eager_tasks
) -> None:
    screen = await ts.open_screen(ts.router(), local_attempt.pk, local_attempt.user)
    await screen.ready()
    await screen.type("(sleep 0.5; echo LEFT$((6*7))) &\r")
    await asyncio.sleep(0.2)
    await screen.comm.disconnect()
    await asyncio.sleep(1.0)
    assert await asyncio.to_thread(ts.holders_alive, local_attempt.pk)

    await database_sync_to_async(services.attempt_end_by_admin)(
        attempt=local_attempt, by=await database_sync_to_async(factories.admin)(username="root")
    )
    assert not await asyncio.to_thread(ts.holders_alive, local_attempt.pk)
    session = await database_sync_to_async(session_of)(local_attempt)
    assert storages["default"].exists(session.recording_name)
    _header, events = await asyncio.to_thread(recording.read_cast, session.recording_name)
    assert "LEFT42" in printed(events)


@ts.sync
async def test_ending_an_ssh_attempt_with_no_tab_open_ends_its_holder_on_the_workstation_and_pulls_the_recording(
    ssh_attempt, term_dirs, settings, eager_tasks
) -> None:
    async with ssh_server(term_dirs) as server:
        await asyncio.to_thread(ts.point_at_ssh_server, ssh_attempt, server, settings)
        screen = await ts.open_screen(ts.router(), ssh_attempt.pk, ssh_attempt.user)
        await screen.ready()
        await screen.type(f"(sleep 1; seq 1 {COUNT}; echo AWAY$((6*7))) &\r")
        await asyncio.sleep(0.3)
        await screen.comm.disconnect()
        await asyncio.sleep(2.0)
        assert await asyncio.to_thread(ts.holders_alive, ssh_attempt.pk)

        await database_sync_to_async(services.attempt_submit)(attempt=ssh_attempt, by=ssh_attempt.user)
        assert not await asyncio.to_thread(ts.holders_alive, ssh_attempt.pk), "the holder ended over SSH"
        session = await database_sync_to_async(session_of)(ssh_attempt)
        assert storages["default"].exists(session.recording_name)
        _header, events = await asyncio.to_thread(recording.read_cast, session.recording_name)
        out = printed(events)
        assert SEQUENCE in out
        assert out.count("AWAY42") == 1


def test_the_finish_task_retries_while_an_ssh_workstation_is_down(db, term_dirs, settings) -> None:
    from celery.exceptions import Retry

    settings.TERMINAL_SSH_KNOWN_HOSTS = str(Path(term_dirs) / "known_hosts")
    Path(settings.TERMINAL_SSH_KNOWN_HOSTS).write_text("")
    settings.TERMINAL_SSH_CONNECT_TIMEOUT_SECONDS = 2
    attempt = factories.AttemptFactory.create(
        reservation__workstation__backend=Workstation.Backend.SSH,
        reservation__workstation__host="127.0.0.1",
        reservation__workstation__ssh_port=ts_free_port(),
    )
    assert attempt.user is not None
    services.attempt_submit(attempt=attempt, by=attempt.user)
    TerminalSession.objects.create(
        attempt=attempt,
        number=1,
        backend="ssh",
        tmux_session="t",
        recording_name=recording.recording_name(attempt.pk, 1),
    )
    with pytest.raises(Retry):
        tasks.attempt_terminals_finish.apply(args=(attempt.pk,), throw=True).get()


def ts_free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the admin's message --------------------------------------------------------------------------


@ts.sync
async def test_an_admin_sends_a_message_from_the_attempt_page_and_every_open_terminal_shows_it(local_attempt) -> None:
    admin = await database_sync_to_async(factories.admin)(username="root")
    first = await ts.open_screen(ts.router(), local_attempt.pk, local_attempt.user)
    await first.ready()
    second = await ts.open_screen(ts.router(), local_attempt.pk, local_attempt.user, number=2)
    await second.message("status")

    def post() -> tuple[int, str]:
        client = Client()
        client.force_login(admin)
        page = client.get(reverse("trials:attempt", kwargs={"pk": local_attempt.pk}))
        assert b'id="terminal-message-form"' in page.content
        url = reverse("trials:attempt-message", kwargs={"pk": local_attempt.pk})
        response = client.post(url, {"message": "reboot at noon"}, follow=True)
        return response.status_code, response.content.decode()

    status, content = await database_sync_to_async(post)()
    assert status == 200
    assert "Message sent" in content
    for screen in (first, second):
        notice = await screen.message("notice")
        assert notice["message"] == "Message from root: reboot at noon"
    await first.comm.disconnect()
    await second.comm.disconnect()


def test_an_empty_message_is_refused_with_a_reason_and_the_expert_has_no_form(db) -> None:
    attempt = factories.AttemptFactory.create()
    admin = Client()
    admin.force_login(factories.admin(username="root"))
    url = reverse("trials:attempt-message", kwargs={"pk": attempt.pk})
    response = admin.post(url, {"message": "   "}, follow=True)
    assert response.status_code == 200
    assert "A message needs some text." in response.content.decode()
    expert = Client()
    assert attempt.user is not None
    expert.force_login(attempt.user)
    page = expert.get(reverse("trials:attempt", kwargs={"pk": attempt.pk}))
    assert b"terminal-message-form" not in page.content
    assert expert.post(url, {"message": "hi"}).status_code == 403


@ts.sync
async def test_keys_typed_before_the_shell_has_opened_reach_it(local_attempt) -> None:
    comm = ts.communicator(ts.router(), ts.ws_path(local_attempt.pk), local_attempt.user)
    connected, _ = await comm.connect(timeout=10)
    assert connected
    screen = ts.Screen(comm)
    # At once, before the shell is open (no "status: connected" yet): a fast typist after a page load.
    await screen.type("echo EARLY$((6*7))\r")
    assert not any(m.get("type") == "status" for m in screen.messages)
    await screen.until("EARLY42", timeout=15)
    await comm.disconnect()


@pytest.mark.skipif(os.geteuid() != 0, reason="shells run as the server's own user unless it is root")
@ts.sync
async def test_the_experts_shell_can_neither_rewrite_the_recorded_keystrokes_nor_remove_the_output_spool(
    local_attempt,
) -> None:
    screen = await ts.open_screen(ts.router(), local_attempt.pk, local_attempt.user)
    await screen.ready()
    name = await database_sync_to_async(lambda: session_of(local_attempt).recording_name)()
    spool = recording.spool_dir(name)
    # Everything the shell's user could try on the spool; each step that is refused says so.
    attempts = [
        f"echo forged >> {spool}/{recording.EVENTS}",
        f"rm {spool}/{recording.OUTPUT}",
        f"mv {spool}/{recording.OUTPUT} {spool}/moved",
        f"echo '{{}}' > {spool}/uploaded.json",
        f"chmod 777 {spool}",
    ]
    # The markers are computed, so the echoed command line never contains them.
    start = len(screen.output)
    line = "; ".join(
        f"{{ {cmd} && echo DONE$((100+{n})) || echo REFUSED$((100+{n})); }}" for n, cmd in enumerate(attempts)
    )
    await screen.type(line + "\r")
    await screen.until(f"REFUSED{100 + len(attempts) - 1}", start=start)
    tail = screen.output[start:].decode(errors="replace")
    for n in range(len(attempts)):
        assert f"REFUSED{100 + n}" in tail, (attempts[n], tail)
        assert f"DONE{100 + n}" not in tail, (attempts[n], tail)
    # The holder (the terminal user's, outside the sandbox) still writes the output spool, its alone.
    start = len(screen.output)
    await screen.type("echo STILL$((6*7))\r")
    await screen.until("STILL42", start=start)
    await asyncio.sleep(0.5)
    output = spool / recording.OUTPUT
    assert "STILL42" in output.read_text()
    assert oct(output.stat().st_mode & 0o777) == "0o600"
    assert (spool.stat().st_uid, oct(spool.stat().st_mode & 0o777)) == (0, "0o711")
    events = spool / recording.EVENTS
    # The keystroke log holds the typed command (with the word in it) but never the appended line.
    assert "forged" not in (events.read_text().splitlines() if events.exists() else [])
    await screen.comm.disconnect()


async def assert_a_killed_holder_gives_a_fresh_shell_still_recorded(attempt) -> None:
    """The terminal's holder dies (it runs outside the sandbox, so only a crash or the host can stop
    it): its shell hangs up, the tab gets a fresh shell, and what that shell prints is recorded."""
    import subprocess

    screen = await ts.open_screen(ts.router(), attempt.pk, attempt.user)
    await screen.ready()
    # Only this attempt's holder, by its socket (this test's folder locally; named after this run's
    # sandbox over SSH): never another test worker's holder of its own attempt with this id.
    pattern = f"^[^ ]*python3 .*rebench-termhol[d] start --socket [^ ]*{sandbox_name(attempt.pk)}/terminal-1.sock"
    killed = await asyncio.to_thread(subprocess.run, ["pkill", "-KILL", "-f", pattern], check=False)
    assert killed.returncode == 0, "the holder should have been running"
    assert (await screen.message("status"))["state"] == "restarting"
    assert (await screen.message("status"))["state"] == "connected"
    start = len(screen.output)
    await screen.type(f"PS1='{ts.PROMPT[:-2]}''$ '\r")
    await screen.until(ts.PROMPT, start=start)
    start = len(screen.output)
    await screen.type("echo LATER$((6*7))\r")
    await screen.until("LATER42", start=start)
    await asyncio.sleep(0.5)
    await screen.comm.disconnect()
    name = await database_sync_to_async(lambda: session_of(attempt).recording_name)()
    events = await recorded_until(attempt, name, "LATER42")
    assert "LATER42" in printed(events), "the fresh shell is recorded"


async def recorded_until(attempt: Attempt, name: str, text: str, timeout: float = 15.0) -> list[list[object]]:
    """The recording's events once `text` is in its output (or the timeout has passed): the recorder
    flushes every TERMINAL_RECORDING_FLUSH_SECONDS, so its last lines may land after the tab closed;
    an SSH workstation's spool is pulled here as the consumer would have."""
    from trials import selectors

    backend = await database_sync_to_async(
        lambda: selectors.workstation_backend(
            Attempt.objects.select_related("workstation").get(pk=attempt.pk).workstation
        )
    )()
    give_up = asyncio.get_running_loop().time() + timeout
    try:
        while True:
            await backend.pull_recording(attempt.pk, 1, recording.spool_dir(name) / recording.OUTPUT)
            _header, events = await asyncio.to_thread(recording.read_cast, name)
            if text in printed(events) or asyncio.get_running_loop().time() > give_up:
                return events
            await asyncio.sleep(0.25)
    finally:
        await backend.disconnect()


@ts.sync
async def test_a_killed_terminal_holder_gives_a_fresh_shell_that_is_still_recorded(local_attempt) -> None:
    await assert_a_killed_holder_gives_a_fresh_shell_still_recorded(local_attempt)


@ts.sync
async def test_a_killed_holder_on_an_ssh_workstation_gives_a_fresh_shell_that_is_still_recorded(
    ssh_attempt, term_dirs, settings
) -> None:
    async with ssh_server(term_dirs) as server:
        await asyncio.to_thread(ts.point_at_ssh_server, ssh_attempt, server, settings)
        await assert_a_killed_holder_gives_a_fresh_shell_still_recorded(ssh_attempt)
