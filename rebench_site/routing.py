"""WebSocket URL routes (the terminal consumer plugs in here)."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
