"""The SSH backend against a real SSH server on 127.0.0.1: typing, resizing, persistence, refusals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.trials import terminal_support as ts
from tests.trials.ssh_server import ssh_server
from trials.consumers import TerminalConsumer
from workstation.backends.ssh import Remote

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


def test_two_sites_sharing_one_ssh_login_keep_their_attempts_workspaces_apart(settings: Any) -> None:
    remote = Remote("/home/rebench/")
    settings.TERMINAL_TMUX_SOCKET_PREFIX = "staging"
    staging = remote.workspace(1), remote.state_dir(1), remote.spool(1)
    settings.TERMINAL_TMUX_SOCKET_PREFIX = "rebench"
    production = remote.workspace(1), remote.state_dir(1), remote.spool(1)

    assert staging[0] == "/home/rebench/rebench-workspaces/staging-a1"
    assert production[0] == "/home/rebench/rebench-workspaces/rebench-a1"
    assert not set(staging) & set(production)
