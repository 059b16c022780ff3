"""Who may attach to a terminal: the owner types, admins watch, everyone else (and other origins) is refused."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from tests import factories
from tests.trials import terminal_support as ts

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def full_app():
    """The project's ASGI application: origin check and session authentication included."""
    from rebench_site.asgi import application

    return application


def session_cookie(user) -> bytes:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def attach(user, attempt_id: int, origin: str = "http://127.0.0.1:8000"):
    headers = [(b"origin", origin.encode())]
    if user is not None:
        headers.append((b"cookie", await database_sync_to_async(session_cookie)(user)))
    comm = ts.WebsocketCommunicator(full_app(), ts.ws_path(attempt_id), headers=headers)
    connected, code = await comm.connect(timeout=10)
    return comm, connected, code


@ts.sync
async def test_the_expert_attaches_to_their_own_terminal_through_the_full_stack(local_attempt) -> None:
    comm, connected, _ = await attach(local_attempt.user, local_attempt.pk)
    assert connected
    screen = ts.Screen(comm)
    hello = await screen.message("hello")
    assert hello["readonly"] is False
    assert hello["recorded"] is True
    await comm.disconnect()


@ts.sync
async def test_another_expert_is_refused(local_attempt) -> None:
    other = await database_sync_to_async(factories.expert)(username="grace")
    _, connected, code = await attach(other, local_attempt.pk)
    assert not connected
    assert code == 4403


@ts.sync
async def test_a_reviewer_is_refused(local_attempt) -> None:
    reviewer = await database_sync_to_async(factories.reviewer)(username="rita")
    _, connected, code = await attach(reviewer, local_attempt.pk)
    assert not connected
    assert code == 4403


@ts.sync
async def test_an_anonymous_user_is_refused(local_attempt) -> None:
    _, connected, code = await attach(None, local_attempt.pk)
    assert not connected
    assert code == 4403


@ts.sync
async def test_a_wrong_origin_is_refused_even_for_the_owner(local_attempt) -> None:
    _, connected, _ = await attach(local_attempt.user, local_attempt.pk, origin="https://evil.example.com")
    assert not connected


@ts.sync
async def test_an_unknown_attempt_and_an_out_of_range_tab_are_refused(local_attempt) -> None:
    _, connected, _ = await attach(local_attempt.user, local_attempt.pk + 1000)
    assert not connected
    comm = ts.WebsocketCommunicator(full_app(), ts.ws_path(local_attempt.pk, number=99), headers=[
        (b"origin", b"http://127.0.0.1:8000"),
        (b"cookie", await database_sync_to_async(session_cookie)(local_attempt.user)),
    ])  # fmt: skip
    connected, _ = await comm.connect(timeout=10)
    screen = ts.Screen(comm)
    closing = await screen.message("close")
    assert "numbered 1 to" in closing["reason"]
