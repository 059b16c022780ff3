"""Admin pages of run imports: upload a file, follow the import's progress live (htmx polling), see its result."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from environments.models import EnvironmentConfiguration
from graders import listing
from graders.imports import selectors, services
from graders.imports.api import ENVELOPE_BYTES
from graders.imports.forms import RunImportForm
from graders.imports.models import RunImport
from rebench_site.errors import ServiceError
from rebench_site.roles import ADMIN, AuthenticatedHttpRequest, role_required


def _too_large(request: HttpRequest) -> bool:
    return int(request.META.get("CONTENT_LENGTH") or 0) > settings.RUN_IMPORT_MAX_BYTES + ENVELOPE_BYTES


@csrf_exempt  # the CSRF check reads the whole body; the size check must come first (see import_list_checked)
@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def import_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Refuse an over-large upload from its declared length, before any of its body is read or spooled."""
    if request.method == "POST" and _too_large(request):
        error = f"The file is over the {settings.RUN_IMPORT_MAX_BYTES / 2**20:.0f} MiB import limit."
        return _list_page(request, RunImportForm(), status=400, error=error)
    return import_list_checked(request)


@csrf_protect
def import_list_checked(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = RunImportForm()
    if request.method == "POST":
        form = RunImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                run_import = services.run_import_create(
                    upload=upload,
                    name=upload.name,
                    size=upload.size,
                    kind=form.cleaned_data["kind"],
                    configuration=form.cleaned_data["configuration"],
                    by=request.user,
                )
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in ("file", "configuration") else None, exc.message)
            else:
                messages.success(request, f"Import {run_import.pk} queued: {run_import.original_name}.")
                return redirect("run_imports:detail", pk=run_import.pk)
        return _list_page(request, form, status=400)
    return _list_page(request, form)


# What a file was read as; "auto" is how it was asked for, never what it was read as.
FORMATS = [choice for choice in RunImport.Kind.choices if choice[0] != RunImport.Kind.AUTO]


def _configurations() -> list[str]:
    """Every configuration an import named (custom ones included) or an environment has."""
    named = RunImport.objects.order_by().values_list("configuration", flat=True)
    return sorted(named.union(EnvironmentConfiguration.objects.order_by().values_list("name", flat=True)))


def _imports_page(request: HttpRequest, *, say: bool) -> tuple[listing.ListQuery, dict[str, Any]]:
    """The list's page and its filters, for the whole page and for the polled rows alike (which say nothing
    of a bad filter: the page they are part of said it once)."""
    configurations = _configurations()
    known = {
        "status": RunImport.Status.values,
        "format": [value for value, _ in FORMATS],
        "configuration": configurations,
    }
    filters = listing.list_query(request.GET, known, request if say else None)
    values = filters.values
    imports = selectors.run_imports_for_admin(
        status=values["status"], kind=values["format"], configuration=values["configuration"], q=values["q"]
    )
    page = listing.paginate(imports, request.GET.get("page"))
    return filters, {
        "imports": page.object_list,
        "page": page,
        "filters": values,
        "query": filters.query,
        "back": listing.with_page(filters.query, page.number),
        "polling": any(not i.is_finished for i in page.object_list),
        "configurations": configurations,
    }


def _list_page(request: HttpRequest, form: RunImportForm, status: int = 200, error: str = "") -> HttpResponse:
    filters, page = _imports_page(request, say=True)
    if request.method == "GET" and (tidy := listing.tidy_url(request, filters)):
        return redirect(tidy)
    context = {
        "form": form,
        "error": error,
        **page,
        "statuses": RunImport.Status.choices,
        "formats": FORMATS,
        "summary": selectors.external_runs_summary(),
        "max_mib": settings.RUN_IMPORT_MAX_BYTES / 2**20,
    }
    return render(request, "run_imports/list.html", context, status=status)


@require_GET
@role_required(ADMIN)
def import_rows(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The list's rows alone (the same filters and page), polled while an import on it is unfinished."""
    return render(request, "run_imports/_rows.html", _imports_page(request, say=False)[1])


@require_GET
@role_required(ADMIN)
def import_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    run_import = get_object_or_404(RunImport.objects.select_related("created_by"), pk=pk)
    return render(request, "run_imports/detail.html", {"run_import": run_import})


@require_GET
@role_required(ADMIN)
def import_progress(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    run_import = get_object_or_404(RunImport, pk=pk)
    return render(request, "run_imports/_progress.html", {"run_import": run_import})
