"""WebSocket URL routes: the browser terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.urls import path

from trials.consumers import TerminalConsumer

if TYPE_CHECKING:
    from channels.routing import URLRouter, _ExtendedURLPattern

TERMINAL = "ws/attempts/<int:attempt_id>/terminal/<int:number>/"

websocket_urlpatterns: list[_ExtendedURLPattern | URLRouter] = [
    path(TERMINAL, TerminalConsumer.as_asgi()),  # type: ignore[arg-type, list-item]  # a consumer; path()'s stubs take views
]
