"""WebSocket URL routes: the browser terminal."""

from django.urls import URLPattern, path

from trials.consumers import TerminalConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/attempts/<int:attempt_id>/terminal/<int:number>/", TerminalConsumer.as_asgi()),
]
