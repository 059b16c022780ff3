"""Admins' import page, and an import job's progress partial."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from rebench_site.errors import ServiceError
from rebench_site.roles import ADMIN, AuthenticatedHttpRequest, role_required
from review import selectors, services
from review.forms import ImportForm
from review.models import ImportJob


@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def import_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.import_job_create(
                created_by=request.user,
                upload=form.cleaned_data["file"],
                fmt=form.cleaned_data["format"],
                batch=form.cleaned_data["batch"],
            )
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Import {job.pk} queued.")
            return redirect("review:import")
    jobs = ImportJob.objects.select_related("created_by")[:20]
    counts = selectors.completion_counts()
    return render(
        request,
        "review/import.html",
        {"form": form, "jobs": jobs, "counts": counts},
        status=400 if form.errors else 200,
    )


@role_required(ADMIN)
@require_GET
def import_job(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=pk)
    return render(request, "review/_import_job.html", {"job": job})
