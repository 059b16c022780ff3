"""What several review pages share."""

from __future__ import annotations

from django.http import HttpRequest


def _wants_json(request: HttpRequest) -> bool:
    return bool(request.headers.get("HX-Request")) or "application/json" in request.headers.get("Accept", "")
