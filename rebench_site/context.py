"""Template context every page gets."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from rebench_site import roles


def site_context(request: HttpRequest) -> dict[str, Any]:
    return {"TIME_ZONE": settings.TIME_ZONE, "unsafe_sandbox": _unsafe_sandbox(request)}


def _unsafe_sandbox(request: HttpRequest) -> list[str]:
    """For admins, while SANDBOX_ALLOW_UNSAFE is on: why attempts may run without a full sandbox (shown in red)."""
    if not settings.SANDBOX_ALLOW_UNSAFE:
        return []
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not roles.is_admin(user):
        return []
    from trials.models import Workstation
    from workstation import capabilities

    reasons = [f"this machine: {problem}" for problem in capabilities.local_report().problems]
    for name, problems in Workstation.objects.exclude(sandbox_problems=[]).values_list("name", "sandbox_problems"):
        reasons += [f"{name}: {problem}" for problem in problems]
    return reasons
