"""Review pages: reviewers' queues and the labeling page with its partials; admins' queue, quality, import pages."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rebench_site.errors import NotAllowed, ServiceError
from rebench_site.params import id_param
from rebench_site.roles import ADMIN, REVIEWER, has_role, role_required
from review import selectors, services
from review.forms import ImportForm, QueueForm
from review.models import Assignment, ImportJob, Label, ReviewQueue

# --- reviewer pages ----------------------------------------------------------------------------


@role_required(REVIEWER, ADMIN)
@require_GET
def review_home(request: HttpRequest) -> HttpResponse:
    queues = list(selectors.queues_for_reviewer(reviewer=request.user)) if not _admin_only(request) else []
    return render(
        request,
        "review/home.html",
        {"queues": queues, "throughput": selectors.reviewer_throughput(reviewer=request.user)},
    )


def _admin_only(request: HttpRequest) -> bool:
    return not has_role(request.user, REVIEWER)


def _workable_queue(request: HttpRequest, pk: int) -> ReviewQueue:
    queue = get_object_or_404(ReviewQueue, pk=pk)
    if not services.reviewer_may_work(queue=queue, reviewer=request.user):
        raise NotAllowed("You are not a reviewer of this queue.")
    return queue


def _item_context(assignment: Assignment | None) -> dict[str, Any]:
    if assignment is None:
        return {"assignment": None}
    queue = assignment.queue
    context: dict[str, Any] = {"assignment": assignment, "completion": assignment.item.completion, "queue": queue}
    if not queue.is_blind:
        # Adjudicators see what the first round said, and the classifier's view.
        context["earlier_labels"] = list(
            Label.objects.filter(completion_id=assignment.item.completion_id)
            .exclude(queue=queue)
            .select_related("reviewer")
            .order_by("id")
        )
    return context


@role_required(REVIEWER)
@require_GET
def queue_label(request: HttpRequest, pk: int) -> HttpResponse:
    queue = _workable_queue(request, pk)
    error = ""
    current = None
    if queue.is_open:
        try:
            current = services.lease_next(queue=queue, reviewer=request.user)
        except ServiceError as exc:
            error = exc.message
    return render(
        request,
        "review/label.html",
        {
            "queue": queue,
            "error": error,
            "throughput": selectors.reviewer_throughput(reviewer=request.user),
            "renew_every_ms": max(5, queue.lease_seconds // 3) * 1000,
            **_item_context(current),
        },
    )


@role_required(REVIEWER)
@require_GET
def item_next(request: HttpRequest, pk: int) -> HttpResponse:
    """The prefetched next item, as a partial (a lease is taken now, so it is ready when needed)."""
    queue = _workable_queue(request, pk)
    exclude = [x for x in map(id_param, request.GET.getlist("exclude")) if x is not None]
    try:
        assignment = services.lease_next(queue=queue, reviewer=request.user, exclude=exclude)
    except ServiceError as exc:
        return HttpResponse(f'<div class="review-error" role="alert">{exc.message}</div>', status=400)
    return render(request, "review/_item.html", _item_context(assignment))


def _wants_json(request: HttpRequest) -> bool:
    return bool(request.headers.get("HX-Request")) or "application/json" in request.headers.get("Accept", "")


def _answer(
    request: HttpRequest, pk: int, payload: dict[str, Any], *, error: ServiceError | None = None
) -> HttpResponse:
    """JSON for the page's scripts; for a plain form post, a message and back to the page."""
    if _wants_json(request):
        if error is not None:
            return JsonResponse(
                {"ok": False, "field": error.field, "code": error.code, "error": error.message}, status=400
            )
        return JsonResponse({"ok": True, **payload})
    if error is not None:
        messages.error(request, f"{error.field}: {error.message}")
    return redirect("review:label", pk=pk)


@role_required(REVIEWER)
@require_POST
def label_submit(request: HttpRequest, pk: int) -> HttpResponse:
    _workable_queue(request, pk)
    try:
        result = services.label_submit(
            reviewer=request.user,
            assignment_id=request.POST.get("assignment"),
            value=request.POST.get("value", ""),
            note=request.POST.get("note", ""),
            seconds_spent=request.POST.get("seconds"),
        )
    except ServiceError as exc:
        return _answer(request, pk, {}, error=exc)
    return _answer(
        request,
        pk,
        {
            "label": result.label.pk,
            "value": result.label.value,
            "created": result.created,
            "throughput": _throughput_json(request),
        },
    )


def _throughput_json(request: HttpRequest) -> dict[str, Any]:
    t = selectors.reviewer_throughput(reviewer=request.user)
    return {
        "last_hour": t["last_hour"],
        "today": t["today"],
        "seconds_per_label": None if t["seconds_per_label"] is None else round(t["seconds_per_label"], 1),
    }


@role_required(REVIEWER)
@require_POST
def label_skip(request: HttpRequest, pk: int) -> HttpResponse:
    _workable_queue(request, pk)
    try:
        services.lease_skip(reviewer=request.user, assignment_id=request.POST.get("assignment"))
    except ServiceError as exc:
        return _answer(request, pk, {}, error=exc)
    return _answer(request, pk, {})


@role_required(REVIEWER)
@require_POST
def label_undo(request: HttpRequest, pk: int) -> HttpResponse:
    _workable_queue(request, pk)
    try:
        assignment = services.label_undo(reviewer=request.user, label_id=request.POST.get("label"))
    except ServiceError as exc:
        return _answer(request, pk, {}, error=exc)
    html = render_to_string("review/_item.html", _item_context(assignment), request=request)
    return _answer(request, pk, {"assignment": assignment.pk, "html": html, "throughput": _throughput_json(request)})


@role_required(REVIEWER)
@require_POST
def lease_renew(request: HttpRequest, pk: int) -> HttpResponse:
    _workable_queue(request, pk)
    try:
        renewed = services.lease_renew(reviewer=request.user, assignment_ids=request.POST.getlist("assignment"))
    except ServiceError as exc:
        return _answer(request, pk, {}, error=exc)
    return _answer(request, pk, {"leases": {str(k): (v.isoformat() if v else None) for k, v in renewed.items()}})


@role_required(REVIEWER)
@require_POST
def lease_release(request: HttpRequest, pk: int) -> HttpResponse:
    _workable_queue(request, pk)
    try:
        services.lease_release(reviewer=request.user, assignment_id=request.POST.get("assignment"))
    except ServiceError as exc:
        return _answer(request, pk, {}, error=exc)
    return _answer(request, pk, {})


# --- admin pages -------------------------------------------------------------------------------


@role_required(ADMIN)
@require_GET
def queue_list(request: HttpRequest) -> HttpResponse:
    return render(request, "review/queue_list.html", {"queues": selectors.queue_overview()})


@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def queue_new(request: HttpRequest) -> HttpResponse:
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
def queue_detail(request: HttpRequest, pk: int) -> HttpResponse:
    queue = get_object_or_404(ReviewQueue.objects.select_related("adjudicates"), pk=pk)
    (overview,) = selectors.queue_overview(queues=ReviewQueue.objects.filter(pk=pk))
    return render(
        request,
        "review/queue_detail.html",
        {
            "queue": overview,
            "agreement": selectors.queue_agreement(queue=queue),
            "stats": selectors.reviewer_stats(labels=Label.objects.filter(queue=queue)),
            "disagreements": len(selectors.queue_disagreements(queue=queue)),
            "adjudication_queues": ReviewQueue.objects.filter(adjudicates=queue),
            "guideline": queue.guideline,
        },
    )


@role_required(ADMIN)
@require_GET
def queue_export(request: HttpRequest, pk: int) -> HttpResponse:
    queue = get_object_or_404(ReviewQueue, pk=pk)
    response = StreamingHttpResponse(selectors.labels_export_lines(queue=queue), content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="queue-{queue.pk}-labels.jsonl"'
    return response


@role_required(ADMIN)
@require_POST
def queue_close(request: HttpRequest, pk: int) -> HttpResponse:
    queue = get_object_or_404(ReviewQueue, pk=pk)
    services.queue_close(queue=queue)
    messages.success(request, f"Queue “{queue.name}” closed: no new leases.")
    return redirect("review:queue", pk=pk)


@role_required(ADMIN)
@require_GET
def reviewer_list(request: HttpRequest) -> HttpResponse:
    return render(request, "review/reviewers.html", {"stats": selectors.reviewer_stats()})


@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def import_page(request: HttpRequest) -> HttpResponse:
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
def import_job(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=pk)
    return render(request, "review/_import_job.html", {"job": job})
