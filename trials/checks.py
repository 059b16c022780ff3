"""`manage.py check`: can this machine sandbox the attempts it hosts (the `local` workstation's, and its worker's)?"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

SANDBOX_TAG = "sandbox"


@register(SANDBOX_TAG, Tags.compatibility)
def sandbox_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """An error per reason this machine can't sandbox attempts; warnings where the admin allowed running without."""
    from workstation import capabilities

    report = capabilities.local_report()
    if report.ok:
        return []
    if settings.SANDBOX_ALLOW_UNSAFE:
        return [
            Warning(
                f"Attempts on this machine run WITHOUT a full sandbox (SANDBOX_ALLOW_UNSAFE is on): {problem}",
                hint="Until it is fixed an expert's shell may reach what the sandbox would hide; "
                "then turn SANDBOX_ALLOW_UNSAFE off.",
                id="trials.W001",
            )
            for problem in report.problems
        ]
    return [
        Error(
            f"This machine can't sandbox attempts: {problem}",
            hint="Its workstation can't be booked until this is fixed. To run anyway (a demo on a laptop), "
            "set SANDBOX_ALLOW_UNSAFE=true: the admin pages then say so in red.",
            id="trials.E001",
        )
        for problem in report.problems
    ]
