"""System checks for environments: the database's rows say what the packages' manifests say.

A database check (Tags.database): `manage.py migrate` runs it, and `manage.py check --database
default`; a deploy that changed a manifest and forgot `manage.py environment_sync` hears of it
there, instead of booking and normalising with the old numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Tags, Warning, register
from django.db import DatabaseError

from environments import registry


@register(Tags.database)
def environments_match_their_manifests(
    app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    # As Django's own database checks: only where the caller names the databases to look at
    # (`migrate`, `check --database`), never in a plain `check`, a worker's start or the agent's,
    # which has no database at all.
    if not databases or "default" not in databases:
        return []
    from environments.models import Environment
    from environments.services import registry_row

    try:
        rows = {row.slug: row for row in Environment.objects.filter(slug__in=registry.BY_SLUG)}
    except DatabaseError:  # no table yet: the migration about to run makes it
        return []
    stale = []
    for spec in registry.BUILTIN_ENVIRONMENTS:
        row = rows.get(spec.slug)
        if row is None or any(getattr(row, name) != value for name, value in registry_row(spec).items()):
            stale.append(spec.slug)
    if not stale:
        return []
    return [
        Warning(
            f"The environments' rows differ from their packages' manifests: {', '.join(stale)}.",
            hint="Run `manage.py environment_sync`.",
            id="environments.W001",
        )
    ]
