"""The reviewer's pages: their queues, and the labeling page with its partials (next item, submit, skip,
undo, leases)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from rebench_site.errors import NotAllowed, ServiceError
from rebench_site.params import id_param
from rebench_site.roles import ADMIN, REVIEWER, AuthenticatedHttpRequest, has_role, role_required
from review import selectors, services
from review.models import Assignment, Label, ReviewQueue
from review.views._shared import _wants_json

# --- reviewer pages ----------------------------------------------------------------------------


@role_required(REVIEWER, ADMIN)
@require_GET
def review_home(request: AuthenticatedHttpRequest) -> HttpResponse:
    queues = list(selectors.queues_for_reviewer(reviewer=request.user)) if not _admin_only(request) else []
    for q in queues:
        q.my_possible = q.my_labels + q.my_remaining  # type: ignore[attr-defined]  # for the page, on the row
        q.labels_in = q.slot_total - q.open_slots  # type: ignore[attr-defined]  # (the same)
    return render(
        request,
        "review/home.html",
        {"queues": queues, "throughput": selectors.reviewer_throughput(reviewer=request.user)},
    )


def _admin_only(request: HttpRequest) -> bool:
    return not has_role(request.user, REVIEWER)


def _workable_queue(request: AuthenticatedHttpRequest, pk: int) -> ReviewQueue:
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
def queue_label(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
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
def item_next(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The prefetched next item, as a partial (a lease is taken now, so it is ready when needed)."""
    queue = _workable_queue(request, pk)
    exclude = [x for x in map(id_param, request.GET.getlist("exclude")) if x is not None]
    try:
        assignment = services.lease_next(queue=queue, reviewer=request.user, exclude=exclude)
    except ServiceError as exc:
        return HttpResponse(f'<div class="review-error" role="alert">{exc.message}</div>', status=400)
    return render(request, "review/_item.html", _item_context(assignment))


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
def label_submit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
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


def _throughput_json(request: AuthenticatedHttpRequest) -> dict[str, Any]:
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
def label_skip(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    queue = _workable_queue(request, pk)
    try:
        services.lease_skip(reviewer=request.user, assignment_id=request.POST.get("assignment"))
    except ServiceError as exc:
        return _answer(request, pk, {}, error=exc)
    progress = selectors.queue_progress(queue=queue, reviewer=request.user)
    return _answer(request, pk, {"message": SKIP_MESSAGE, "progress": progress.as_json()})


@role_required(REVIEWER)
@require_POST
def label_undo(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
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
def lease_renew(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    _workable_queue(request, pk)
    try:
        renewed = services.lease_renew(reviewer=request.user, assignment_ids=request.POST.getlist("assignment"))
    except ServiceError as exc:
        return _answer(request, pk, {}, error=exc)
    return _answer(request, pk, {"leases": {str(k): (v.isoformat() if v else None) for k, v in renewed.items()}})


@role_required(REVIEWER)
@require_POST
def lease_release(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    _workable_queue(request, pk)
    try:
        services.lease_release(reviewer=request.user, assignment_id=request.POST.get("assignment"))
    except ServiceError as exc:
        return _answer(request, pk, {}, error=exc)
    return _answer(request, pk, {})
