"""Leaderboard pages: the overview and per-environment pages (admins), "My results" (experts), exports."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from graders.leaderboards import selectors, services
from rebench_site.errors import ServiceError
from rebench_site.roles import ADMIN, EXPERT, AuthenticatedHttpRequest, is_admin, role_required


def _no_snapshot(request: HttpRequest, title: str, scale: dict[str, Any], status: int = 200) -> HttpResponse:
    return render(request, "leaderboards/empty.html", {"title": title, **scale}, status=status)


def _scale(request: HttpRequest) -> dict[str, Any]:
    """The configuration asked for (`?configuration=`, default full) and what the selector offers."""
    configuration = request.GET.get("configuration") or selectors.FULL
    return {
        "configuration": configuration,
        "configurations": selectors.snapshot_configurations(),
        "configuration_query": "" if configuration == selectors.FULL else f"?configuration={configuration}",
    }


def _bad_scale(request: HttpRequest, scale: dict[str, Any]) -> HttpResponse | None:
    try:
        selectors.configuration_param(scale["configuration"])
    except ServiceError as exc:
        scale["configuration_error"] = exc.message
        return _no_snapshot(request, "Leaderboards", scale, status=400)
    return None


@require_GET
@role_required(ADMIN)
def overview(request: AuthenticatedHttpRequest) -> HttpResponse:
    scale = _scale(request)
    if (refused := _bad_scale(request, scale)) is not None:
        return refused
    snapshot = selectors.leaderboard_latest(scale["configuration"])
    if snapshot is None:
        return _no_snapshot(request, "Leaderboards", scale)
    context: dict[str, Any] = {"snapshot": snapshot, **scale, **selectors.overview_page(snapshot.data)}
    context["chart_data"] = {"curves": context["curves"], "environments": context["environments"]}
    context["export_tables"] = selectors.TABLES
    context["excluded"] = list(selectors.excluded_runs()[:200])
    return render(request, "leaderboards/overview.html", context)


@require_GET
@role_required(ADMIN)
def environment(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    scale = _scale(request)
    if (refused := _bad_scale(request, scale)) is not None:
        return refused
    snapshot = selectors.leaderboard_latest(scale["configuration"])
    if snapshot is None:
        return _no_snapshot(request, slug, scale)
    page = selectors.environment_page(snapshot.data, slug)
    if page is None:
        raise Http404("No such environment on the leaderboard.")
    context: dict[str, Any] = {
        "snapshot": snapshot,
        **scale,
        **page,
        "chart_data": {"curves": page["curves"]},
        "export_tables": selectors.TABLES,
    }
    return render(request, "leaderboards/environment.html", context)


@require_GET
@role_required(EXPERT, ADMIN)
def mine(request: AuthenticatedHttpRequest) -> HttpResponse:
    """An expert's own attempts as the leaderboard scores them, at every configuration; no one else's rows."""
    snapshot = None
    own: list[dict[str, Any]] = []
    humans: list[dict[str, Any]] = []
    for name in selectors.snapshot_configurations():
        found = selectors.leaderboard_latest(name, with_runs=True)
        if found is None:
            continue
        snapshot = snapshot or found
        data = selectors.snapshot_visible_to(found, request.user)
        own += [{**r, "configuration": name} for r in data.get("runs", []) if r.get("user_id") == request.user.pk]
        humans += [h for h in data.get("humans", []) if h.get("user_id") == request.user.pk]
    context = {"snapshot": snapshot, "runs": own, "humans": humans, "export_tables": ("humans", "runs")}
    return render(request, "leaderboards/mine.html", context)


@require_POST
@role_required(ADMIN)
def compute(request: AuthenticatedHttpRequest) -> HttpResponse:
    snapshot = services.leaderboard_compute_now(by=request.user)
    messages.success(request, f"Leaderboards computed from {snapshot.runs} runs in {snapshot.duration_seconds:.2f} s.")
    return redirect("leaderboards:overview")


@require_GET
@role_required(EXPERT, ADMIN)
def export(request: AuthenticatedHttpRequest, table: str, fmt: str) -> HttpResponse:
    """Every table and curve as CSV or JSON; an expert's export holds only their own rows."""
    if (table != "all" and table not in selectors.TABLES) or fmt not in ("csv", "json"):
        raise Http404("No such table or format.")
    if table == "all" and fmt != "json":
        raise Http404("The whole snapshot is JSON only.")
    configuration = request.GET.get("configuration") or selectors.FULL
    try:
        selectors.configuration_param(configuration)
    except ServiceError as exc:
        return JsonResponse({"configuration": [exc.message]}, status=400)
    snapshot = selectors.leaderboard_latest(configuration, with_runs=table in ("runs", "all"))
    # Before the first computation the export is empty, not missing: scripts polling it need no special case.
    data = selectors.snapshot_visible_to(snapshot, request.user) if snapshot else {}
    computed_at = snapshot.computed_at.isoformat() if snapshot else None
    stamp = snapshot.computed_at.strftime("%Y%m%dT%H%M%SZ") if snapshot else "none"
    if table == "all":
        body = {"computed_at": computed_at, "admin_view": is_admin(request.user), **data}
        response: HttpResponse = JsonResponse(body, json_dumps_params={"indent": 1})
    elif fmt == "json":
        body = {"computed_at": computed_at, "rows": selectors.table_rows(data, table)}
        response = JsonResponse(body, json_dumps_params={"indent": 1})
    else:
        response = HttpResponse(_csv(selectors.table_rows(data, table), table), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="leaderboard-{configuration}-{table}-{stamp}.{fmt}"'
    return response


def _csv(rows: list[dict[str, Any]], table: str) -> str:
    columns = list(selectors.CURVE_COLUMNS) if table == "curves" else list(rows[0]) if rows else []
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: "" if v is None else json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()}
        )
    return out.getvalue()
