"""System checks for grading: a late-acked scoring job must finish before the broker hands it out again."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Warning, register

from environments import packages


@register()
def visibility_timeout_exceeds_scoring(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    visibility = (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}).get("visibility_timeout")
    if visibility is None:  # brokers without one (AMQP, SQLAlchemy) redeliver only when the worker is gone
        return []
    longest = float(settings.GRADING_SCORE_TIMEOUT_SECONDS)
    for base in packages.package_dirs():
        if base.is_dir():
            for folder in base.iterdir():
                package = packages.find(folder.name) if (folder / "metadata.yaml").is_file() else None
                if package is not None:
                    longest = max(longest, package.score_timeout_seconds)
    if visibility <= longest:
        return [
            Warning(
                f"CELERY_VISIBILITY_TIMEOUT ({visibility} s) is not above the longest scoring run ({longest:g} s):"
                " a running scoring job would be handed to a second worker.",
                hint="Raise CELERY_VISIBILITY_TIMEOUT.",
                id="graders.W001",
            )
        ]
    return []
