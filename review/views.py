"""Review pages: reviewers' queues, the labeling page with its partials and their own labels; admins' queue,
quality, completion and import pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rebench_site.errors import NotAllowed, ServiceError
from rebench_site.params import id_param
from rebench_site.roles import ADMIN, REVIEWER, has_role, role_required
from review import agreement, selectors, services
from review.forms import ImportForm, QueueForm
from review.models import (
    DEFAULT_MIN_SECONDS_PER_ITEM,
    Assignment,
    Completion,
    ImportJob,
    Label,
    LabelValue,
    ReviewQueue,
)

# --- reviewer pages ----------------------------------------------------------------------------


@role_required(REVIEWER, ADMIN)
@require_GET
def review_home(request: HttpRequest) -> HttpResponse:
    queues = list(selectors.queues_for_reviewer(reviewer=request.user)) if not _admin_only(request) else []
    for q in queues:
        q.my_possible = q.my_labels + q.my_remaining  # type: ignore[attr-defined]
        q.labels_in = q.slot_total - q.open_slots  # type: ignore[attr-defined]
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
            "progress": selectors.queue_progress(queue=queue, reviewer=request.user),
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
    elif payload.get("message"):
        messages.success(request, payload["message"])
    return redirect("review:label", pk=pk)


@role_required(REVIEWER)
@require_POST
def label_submit(request: HttpRequest, pk: int) -> HttpResponse:
    queue = _workable_queue(request, pk)
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
    label = result.label
    too_fast = label.seconds_spent < queue.min_seconds_per_item
    message = f"Labelled {label.value}."
    if too_fast:
        message += (
            f" That took {label.seconds_spent:.1f} s, under this queue's {queue.min_seconds_per_item:g} s"
            " per item: it is flagged as too fast."
        )
    return _answer(
        request,
        pk,
        {
            "label": label.pk,
            "value": label.value,
            "created": result.created,
            "too_fast": too_fast,
            "message": message,
            "throughput": _throughput_json(request),
            "progress": selectors.queue_progress(queue=queue, reviewer=request.user).as_json(),
        },
    )


def _throughput_json(request: HttpRequest) -> dict[str, Any]:
    t = selectors.reviewer_throughput(reviewer=request.user)
    return {
        "last_hour": t["last_hour"],
        "today": t["today"],
        "seconds_per_label": None if t["seconds_per_label"] is None else round(t["seconds_per_label"], 1),
        "too_fast": t["too_fast"],
    }


SKIP_MESSAGE = "Skipped: the item went back to the queue for other reviewers; you won't be shown it again."


@role_required(REVIEWER)
@require_POST
def label_skip(request: HttpRequest, pk: int) -> HttpResponse:
    queue = _workable_queue(request, pk)
    try:
        services.lease_skip(reviewer=request.user, assignment_id=request.POST.get("assignment"))
    except ServiceError as exc:
        return _answer(request, pk, {}, error=exc)
    progress = selectors.queue_progress(queue=queue, reviewer=request.user)
    return _answer(request, pk, {"message": SKIP_MESSAGE, "progress": progress.as_json()})


@role_required(REVIEWER)
@require_POST
def label_undo(request: HttpRequest, pk: int) -> HttpResponse:
    queue = _workable_queue(request, pk)
    try:
        assignment = services.label_undo(reviewer=request.user, label_id=request.POST.get("label"))
    except ServiceError as exc:
        return _answer(request, pk, {}, error=exc)
    html = render_to_string("review/_item.html", _item_context(assignment), request=request)
    return _answer(
        request,
        pk,
        {
            "assignment": assignment.pk,
            "html": html,
            "throughput": _throughput_json(request),
            "progress": selectors.queue_progress(queue=queue, reviewer=request.user).as_json(),
        },
    )


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


# --- a reviewer's own labels ------------------------------------------------------------------

LABELS_PER_PAGE = 50


def _my_labels_page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
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
def my_labels(request: HttpRequest) -> HttpResponse:
    """The reviewer's own labels, newest first, 50 a page (one queue's with ?queue=), each editable while allowed."""
    return _my_labels_page(request)


@role_required(REVIEWER)
@require_POST
def label_edit(request: HttpRequest, pk: int) -> HttpResponse:
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
def queue_detail(request: HttpRequest, pk: int) -> HttpResponse:
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


COMPLETIONS_PER_PAGE = 50


@role_required(ADMIN)
@require_GET
def completion_list(request: HttpRequest) -> HttpResponse:
    """Every completion, newest first, 50 a page; filtered by queue, label state and source, searched by text."""
    filters = {name: request.GET.get(name, "").strip() for name in ("queue", "state", "source", "q")}
    queue = None
    if filters["queue"]:
        queue_id = id_param(filters["queue"])
        queue = ReviewQueue.objects.filter(pk=queue_id).first() if queue_id else None
    known = {
        "queue": queue is not None,
        "state": filters["state"] in selectors.COMPLETION_LABEL_STATES,
        "source": filters["source"] in Completion.Source.values,
    }
    for name, ok in known.items():
        if filters[name] and not ok:
            messages.error(request, f"{name}: no {name} “{filters[name][:50]}”; showing every {name}.")
            filters[name] = ""
    filters["q"] = filters["q"][:200]
    completions = selectors.completions_for_admin(
        queue=queue, state=filters["state"], source=filters["source"], q=filters["q"]
    )
    page = Paginator(completions, COMPLETIONS_PER_PAGE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    counts = selectors.label_counts(completion_ids=[c.pk for c in rows], queue=queue)
    return render(
        request,
        "review/completion_list.html",
        {
            "rows": [(c, counts[c.pk]) for c in rows],
            "page": page,
            "filters": filters,
            "filter_queue": queue,
            "query": urlencode({k: v for k, v in filters.items() if v}),
            "queues": ReviewQueue.objects.order_by("-created_at", "-id").values_list("pk", "name"),
            "states": selectors.COMPLETION_LABEL_STATES.items(),
            "sources": Completion.Source.choices,
        },
    )


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
