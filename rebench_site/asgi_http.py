"""Django's ASGI handler with the whole request (middleware and view) in one thread hand-off.

Django's own handler runs the middleware chain asynchronously and converts wherever a middleware
can't: ours are synchronous, so a request went from the event loop to a thread for the chain, back
to the event loop under the lowest synchronous middleware (Django's asynchronous view caller), and
to a thread again for the (synchronous) view. Every view and middleware here is synchronous: this
handler loads the chain in synchronous mode and runs it, view included, in one thread-sensitive
hand-off. An async view would still work (Django's synchronous caller wraps it in async_to_sync).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest


class OneHopASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> Any:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
