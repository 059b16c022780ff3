"""Template context every page gets."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def site_context(request: HttpRequest) -> dict[str, Any]:
    return {"TIME_ZONE": settings.TIME_ZONE}
