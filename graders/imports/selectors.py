"""Reads for run imports: the admin's list, and the imported and API runs each import or harness wrote."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet

from graders.imports.models import RunImport
from rebench_site import roles
from rebench_site.params import id_param
from trials.models import Attempt


def run_imports_recent(limit: int = 100) -> list[RunImport]:
    return list(RunImport.objects.select_related("created_by").order_by("-created_at", "-pk")[:limit])


def run_imports_for_admin(
    *, status: str = "", kind: str = "", configuration: str = "", q: str = ""
) -> QuerySet[RunImport]:
    """Run imports for the admin's list, newest first.

    `kind` is the format the file was read as (the one detected, else the one asked for); `q` matches the
    file's name, who uploaded it, or the import's number.
    """
    imports = RunImport.objects.select_related("created_by")
    if status:
        imports = imports.filter(status=status)
    if kind:
        imports = imports.filter(Q(detected_kind=kind) | Q(detected_kind="", kind=kind))
    if configuration:
        imports = imports.filter(configuration=configuration)
    if q:
        match = Q(original_name__icontains=q) | Q(created_by__username__icontains=q)
        if (import_id := id_param(q)) is not None:
            match |= Q(pk=import_id)
        imports = imports.filter(match)
    return imports.order_by("-created_at", "-pk")


def external_runs_summary() -> list[dict[str, object]]:
    """Runs that came from outside, counted by source and participant kind (for the import page)."""
    return list(
        Attempt.objects.exclude(source=Attempt.Source.LOCAL)
        .values("source", "participant_kind")
        .annotate(runs=Count("pk"))
        .order_by("source", "participant_kind")
    )


def api_runs_visible_to(user: User) -> QuerySet[Attempt]:
    """API runs a harness created (every API run for an admin); ids outside it answer 404."""
    runs = Attempt.objects.filter(source=Attempt.Source.API).select_related(
        "environment", "configuration", "final_score"
    )
    return runs if roles.is_admin(user) else runs.filter(submitted_by_id=user.pk)
