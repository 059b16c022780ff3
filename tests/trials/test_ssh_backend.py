"""The SSH backend against a real SSH server on 127.0.0.1: typing, resizing, persistence, refusals."""

from __future__ import annotations

import asyncio

import pytest

from tests.trials import terminal_support as ts
from tests.trials.ssh_server import ssh_server
from trials.consumers import TerminalConsumer
from workstation import layout, users
from workstation.backends import BackendError
from workstation.backends.local import sandbox_up

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def router():
    from channels.routing import URLRouter

    from rebench_site.routing import websocket_urlpatterns

    return URLRouter(websocket_urlpatterns)


assert TerminalConsumer is not None  # the consumer under test, reached through the project's routes


@ts.sync
async def test_the_ssh_backend_types_echo_hello_and_resizes(ssh_attempt, term_dirs, settings) -> None:
    async with ssh_server(term_dirs) as server:
        await asyncio.to_thread(ts.point_at_ssh_server, ssh_attempt, server, settings)
        screen = await ts.open_screen(router(), ssh_attempt.pk, ssh_attempt.user)
        await screen.ready()
        start = len(screen.output)
        await screen.type("echo hel''lo over ssh\r")
        await screen.until("hello over ssh", start=start)
        await screen.comm.send_to(bytes_data=ts.resize_frame(100, 30))
        await asyncio.sleep(0.3)
        start = len(screen.output)
        await screen.type("stty size; echo $PATH; command -v task\r")
        await screen.until("30 100", start=start)
        await screen.until("/opt/rebench/bin/task", start=start)  # inside the workstation's sandbox
        await screen.comm.disconnect()


@ts.sync
async def test_an_ssh_shell_survives_a_dropped_socket(ssh_attempt, term_dirs, settings) -> None:
    async with ssh_server(term_dirs) as server:
        await asyncio.to_thread(ts.point_at_ssh_server, ssh_attempt, server, settings)
        await ts.assert_shell_survives_a_dropped_socket(router(), ssh_attempt)


@ts.sync
async def test_an_ssh_flood_stops_at_once_on_ctrl_c(ssh_attempt, term_dirs, settings) -> None:
    async with ssh_server(term_dirs) as server:
        await asyncio.to_thread(ts.point_at_ssh_server, ssh_attempt, server, settings)
        await ts.assert_a_flood_stops_at_once_on_ctrl_c(router(), ssh_attempt)


@ts.sync
async def test_a_host_key_not_in_known_hosts_is_refused_with_a_clear_error_and_retried(
    ssh_attempt, term_dirs, settings
) -> None:
    async with ssh_server(term_dirs, wrong_host_key=True) as server:
        await asyncio.to_thread(ts.point_at_ssh_server, ssh_attempt, server, settings)
        screen = await ts.open_screen(router(), ssh_attempt.pk, ssh_attempt.user)
        first = await screen.message("error")
        assert "host key" in first["message"]
        assert first["retry_in"] == 1
        second = await screen.message("error", timeout=5)
        assert second["retry_in"] == 2, "retries back off"
        await screen.comm.disconnect()


@ts.sync
async def test_a_refused_key_is_a_clear_error(ssh_attempt, term_dirs, settings) -> None:
    async with ssh_server(term_dirs, authorize_client=False) as server:
        await asyncio.to_thread(ts.point_at_ssh_server, ssh_attempt, server, settings)
        screen = await ts.open_screen(router(), ssh_attempt.pk, ssh_attempt.user)
        error = await screen.message("error")
        assert "refused the server's SSH key" in error["message"]
        await screen.comm.disconnect()


@ts.sync
async def test_a_workstation_that_is_down_is_a_clear_error(ssh_attempt, term_dirs, settings) -> None:
    async with ssh_server(term_dirs) as server:
        await asyncio.to_thread(ts.point_at_ssh_server, ssh_attempt, server, settings)
    # The server is gone now: nothing listens on its port.
    screen = await ts.open_screen(router(), ssh_attempt.pk, ssh_attempt.user)
    error = await screen.message("error")
    assert "Can't reach the workstation" in error["message"]
    await screen.comm.disconnect()


@ts.sync
async def test_what_the_browser_terminal_of_an_ssh_workstation_writes_is_in_the_workspace_its_agent_scores(
    ssh_attempt, term_dirs, settings
) -> None:
    async with ssh_server(term_dirs) as server:
        await asyncio.to_thread(ts.point_at_ssh_server, ssh_attempt, server, settings)
        screen = await ts.open_screen(router(), ssh_attempt.pk, ssh_attempt.user)
        await screen.ready()
        start = len(screen.output)
        await screen.type("echo typed-over-ssh > note.txt; echo wr''ote\r")
        await screen.until("wrote", start=start)
        await screen.comm.disconnect()
    # The agent prepares and scores layout.workspace(): the terminal's work is there, the attempt's user's.
    note = layout.workspace(ssh_attempt.pk) / "note.txt"
    assert note.read_text() == "typed-over-ssh\n"
    if users.per_attempt():
        assert note.stat().st_uid == users.attempt_user(ssh_attempt.pk, create=False).uid


@ts.sync
async def test_files_go_in_and_out_of_an_ssh_workstations_workspace(ssh_attempt, term_dirs, settings, tmp_path) -> None:
    from trials.models import Workstation
    from trials.selectors import attempt_sandbox_request, workstation_backend

    async with ssh_server(term_dirs) as server:
        await asyncio.to_thread(ts.point_at_ssh_server, ssh_attempt, server, settings)
        workstation = await asyncio.to_thread(Workstation.objects.get, pk=ssh_attempt.workstation_id)
        backend = workstation_backend(workstation)
        request = await asyncio.to_thread(attempt_sandbox_request, ssh_attempt)
        await asyncio.to_thread(sandbox_up, request)  # the workspace, as its preparation leaves it
        await backend.workspace_upload(request, "data/in.txt", b"uploaded\n")
        dest = tmp_path / "out"
        kind = await backend.workspace_download(request, "data/in.txt", dest, max_bytes=1000)
        with pytest.raises(BackendError, match="over the download limit"):
            await backend.workspace_download(request, "data/in.txt", tmp_path / "cut", max_bytes=3)
        with pytest.raises(BackendError):
            await backend.workspace_upload(request, "../escape.txt", b"no")
        await backend.disconnect()
    assert (kind, dest.read_bytes()) == ("file", b"uploaded\n")
    assert (layout.workspace(ssh_attempt.pk) / "data" / "in.txt").read_bytes() == b"uploaded\n"
    assert not (layout.workspace_root() / "escape.txt").exists()
