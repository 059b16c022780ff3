"""Admins' queue pages (list, new, detail, export, close) and the reviewers' quality page."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rebench_site.errors import ServiceError
from rebench_site.roles import ADMIN, AuthenticatedHttpRequest, role_required
from review import agreement, selectors, services
from review.forms import QueueForm
from review.models import DEFAULT_MIN_SECONDS_PER_ITEM, Label, ReviewQueue

# --- admin pages -------------------------------------------------------------------------------


@role_required(ADMIN)
@require_GET
def queue_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "review/queue_list.html", {"queues": selectors.queue_overview()})


@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def queue_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = QueueForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            queue = services.queue_create(
                created_by=request.user,
                name=data["name"],
                policy=data["policy"],
                overlap=data["overlap"],
                lease_seconds=data["lease_seconds"],
                all_reviewers=data["all_reviewers"],
                reviewers=data["reviewers"],
                gold_rate=data["gold_rate"] or 0.0,
                min_seconds_per_item=(
                    DEFAULT_MIN_SECONDS_PER_ITEM
                    if data["min_seconds_per_item"] is None
                    else data["min_seconds_per_item"]
                ),
                guideline=data["guideline"],
                source=data["source"],
                batch=data["batch"],
                size=data["size"],
            )
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Queue “{queue.name}” created with {queue.items.count()} items.")
            return redirect("review:queue", pk=queue.pk)
    return render(request, "review/queue_new.html", {"form": form}, status=400 if form.errors else 200)


@role_required(ADMIN)
@require_GET
def queue_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    queue = get_object_or_404(ReviewQueue.objects.select_related("adjudicates"), pk=pk)
    (overview,) = selectors.queue_overview(queues=ReviewQueue.objects.filter(pk=pk))
    return render(
        request,
        "review/queue_detail.html",
        {
            "queue": overview,
            "agreement": agreement.queue_agreement(queue=queue),
            "stats": selectors.reviewer_stats(labels=Label.objects.filter(queue=queue)),
            "disagreements": len(selectors.queue_disagreements(queue=queue)),
            "adjudication_queues": ReviewQueue.objects.filter(adjudicates=queue),
            "guideline": queue.guideline,
        },
    )


@role_required(ADMIN)
@require_GET
def queue_export(request: AuthenticatedHttpRequest, pk: int) -> HttpResponseBase:
    queue = get_object_or_404(ReviewQueue, pk=pk)
    response = StreamingHttpResponse(selectors.labels_export_lines(queue=queue), content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="queue-{queue.pk}-labels.jsonl"'
    return response


@role_required(ADMIN)
@require_POST
def queue_close(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    queue = get_object_or_404(ReviewQueue, pk=pk)
    services.queue_close(queue=queue)
    messages.success(request, f"Queue “{queue.name}” closed: no new leases.")
    return redirect("review:queue", pk=pk)


@role_required(ADMIN)
@require_GET
def reviewer_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "review/reviewers.html", {"stats": selectors.reviewer_stats()})
