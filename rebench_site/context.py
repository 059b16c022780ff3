"""Template context every page gets."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from rebench_site import roles


def site_context(request: HttpRequest) -> dict[str, Any]:
    zone = timezone.get_current_timezone_name()
    return {
        # The zone this page's times are in (rebench_site.middleware.TimeZoneMiddleware picked it).
        "time_zone": zone,
        # The same under the name Django's own tz context processor gives it, for templates written against that.
        "TIME_ZONE": zone,
        "unsafe_sandbox": _unsafe_sandbox(request),
    }


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
