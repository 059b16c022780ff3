"""Under ASGI a request's middleware and its view run in one hand-off from the event loop to a thread.

Django's own ASGI handler runs the chain asynchronously and converts wherever a middleware can't: with
synchronous middleware that was a thread for the chain, the event loop again under the lowest one,
and the thread again for the view. rebench_site.asgi_http.OneHopASGIHandler loads the chain
synchronously and runs all of it, view included, in one thread-sensitive hand-off."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from asgiref.sync import AsyncToSync, SyncToAsync, async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.http import HttpRequest, HttpResponse
from django.urls import path

from rebench_site.asgi import application, django_asgi_app
from rebench_site.asgi_http import OneHopASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


def chain_steps(handler: Any) -> list[Any]:
    """Every step of the handler's chain, top first, down to Django's own view caller."""
    steps: list[Any] = []
    step = handler._middleware_chain
    while step is not None:
        steps.append(step)
        # Each middleware holds the next step, wrapped by convert_exception_to_response (@wraps).
        below = getattr(step, "get_response", None)
        step = getattr(below, "__wrapped__", below)
    return steps


def test_the_sites_asgi_application_serves_http_with_the_one_hop_handler() -> None:
    assert isinstance(django_asgi_app, OneHopASGIHandler)
    steps = chain_steps(django_asgi_app)
    names = [getattr(s, "__qualname__", type(s).__name__) for s in steps]
    assert not [n for n, s in zip(names, steps, strict=True) if isinstance(s, AsyncToSync | SyncToAsync)], names
    # Down to the handler's synchronous view caller: the view runs in the chain's thread too.
    assert names[-1] == "BaseHandler._get_response", names
    assert "AxesMiddleware" in names


seen_threads: dict[str, int] = {}


class RecordThread:
    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        seen_threads["middleware"] = threading.get_ident()
        return self.get_response(request)


def thread_view(request: HttpRequest) -> HttpResponse:
    seen_threads["view"] = threading.get_ident()
    return HttpResponse("ok")


urlpatterns = [path("thread/", thread_view)]


def get(app: Any, path_: str) -> tuple[int, bytes]:
    async def call() -> tuple[int, bytes]:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": path_, "raw_path": path_.encode(), "query_string": b"", "root_path": "", "headers": [],
            "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
        }  # fmt: skip
        communicator = ApplicationCommunicator(app, scope)
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(10)
        body = await communicator.receive_output(10)
        await communicator.wait(10)
        return start["status"], body["body"]

    return async_to_sync(call)()


def test_a_request_never_goes_back_to_the_event_loop_between_its_middleware_and_its_view(settings, monkeypatch) -> None:
    settings.ROOT_URLCONF = __name__
    settings.MIDDLEWARE = [*settings.MIDDLEWARE[:-1], f"{__name__}.RecordThread", settings.MIDDLEWARE[-1]]
    handler = OneHopASGIHandler()
    back_to_the_loop: list[Any] = []
    original = AsyncToSync.__call__

    def counted(self: AsyncToSync[Any, Any], *args: Any, **kwargs: Any) -> Any:
        if self.awaitable.__qualname__ != "get.<locals>.call":  # the test's own way in
            back_to_the_loop.append(self.awaitable)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AsyncToSync, "__call__", counted)
    seen_threads.clear()
    assert get(handler, "/thread/") == (200, b"ok")
    # Django's own handler went back to the loop under the lowest synchronous middleware, then
    # returned to this thread for the view.
    assert back_to_the_loop == []
    assert seen_threads["middleware"] == seen_threads["view"]


def test_the_login_page_answers_through_the_sites_asgi_application() -> None:
    status, body = get(application, "/accounts/login/")
    assert status == 200
    assert b'name="password"' in body
