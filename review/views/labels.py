"""A reviewer's own labels: the list, and editing one while it may still be edited."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from rebench_site.errors import ServiceError
from rebench_site.params import id_param
from rebench_site.roles import REVIEWER, AuthenticatedHttpRequest, role_required
from review import selectors, services
from review.models import Label, LabelValue, ReviewQueue
from review.views._shared import _wants_json

# --- a reviewer's own labels ------------------------------------------------------------------

LABELS_PER_PAGE = 50


def _my_labels_page(request: AuthenticatedHttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    mine = ReviewQueue.objects.filter(labels__reviewer=request.user).distinct().order_by("-created_at", "-id")
    queue = None
    raw = request.GET.get("queue", "").strip()
    if raw:
        queue_id = id_param(raw)
        queue = mine.filter(pk=queue_id).first() if queue_id else None
        if queue is None:
            messages.error(request, f"queue: you have no labels in a queue “{raw[:50]}”; showing all your labels.")
    labels = selectors.labels_of_reviewer(reviewer=request.user, queue=queue)
    page = Paginator(labels, LABELS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "review/my_labels.html",
        {
            "rows": selectors.label_rows(list(page.object_list)),
            "page": page,
            "queue": queue,
            "queues": mine,
            "progress": selectors.queue_progress(queue=queue, reviewer=request.user) if queue else None,
            "query": urlencode({"queue": queue.pk}) if queue else "",
            "values": LabelValue.choices,
            "error": error,
        },
        status=status,
    )


@role_required(REVIEWER)
@require_GET
def my_labels(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The reviewer's own labels, newest first, 50 a page (one queue's with ?queue=), each editable while allowed."""
    return _my_labels_page(request)


@role_required(REVIEWER)
@require_POST
def label_edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    # Someone else's label is a 404: whether it exists is none of this reviewer's business.
    label = get_object_or_404(Label, pk=pk, reviewer=request.user)
    try:
        label = services.label_edit(
            reviewer=request.user,
            label_id=label.pk,
            value=request.POST.get("value"),
            note=request.POST.get("note"),
        )
    except ServiceError as exc:
        if _wants_json(request):
            return JsonResponse({"ok": False, "field": exc.field, "code": exc.code, "error": exc.message}, status=400)
        return _my_labels_page(request, error=f"{exc.field}: {exc.message}", status=400)
    if _wants_json(request):
        return JsonResponse({"ok": True, "label": label.pk, "value": label.value, "note": label.note})
    messages.success(request, f"Label {label.pk} is now {label.value}.")
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("review:my-labels")
