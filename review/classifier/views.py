"""Classifier pages: versions (admin), the threshold page (admin), the red-team tool (reviewers), the dashboard."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from rebench_site.errors import ServiceError
from rebench_site.params import id_param
from rebench_site.roles import ADMIN, REVIEWER, AuthenticatedHttpRequest, role_required
from review.classifier import selectors, services
from review.classifier.models import ClassifierVersion, RedTeamAttempt
from review.models import Completion, LabelValue, ReviewQueue

DEFAULT_TARGET_RECALL = 0.99


# --- versions --------------------------------------------------------------------------------


@role_required(ADMIN)
def version_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    versions = list(ClassifierVersion.objects.select_related("created_by")[:50])
    counts = selectors.training_label_counts()
    return render(
        request,
        "review/classifier/versions.html",
        {"versions": versions, "counts": counts, "min_per_class": _min_per_class()},
    )


def _min_per_class() -> int:
    from django.conf import settings

    return settings.CLASSIFIER_MIN_LABELS_PER_CLASS


@role_required(ADMIN)
@require_POST
def version_train(request: AuthenticatedHttpRequest) -> HttpResponse:
    try:
        version = services.classifier_version_request(by=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Training {version} from {version.injurious_count + version.safe_count} labels.")
    return redirect("classifier:versions")


@role_required(ADMIN)
def _versions(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The versions table alone, polled by htmx while one trains."""
    versions = list(ClassifierVersion.objects.select_related("created_by")[:50])
    return render(request, "review/classifier/_versions.html", {"versions": versions})


@role_required(ADMIN)
@require_POST
def version_activate(request: AuthenticatedHttpRequest) -> HttpResponse:
    raw = request.POST.get("version", "")
    version = ClassifierVersion.objects.filter(pk=version_id).first() if (version_id := id_param(raw)) else None
    if version is None:
        messages.error(request, "version: no such classifier version.")
        return redirect("classifier:versions")
    try:
        services.classifier_version_activate(version=version, by=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{version} is active; its scores are the completions' scores now.")
    return redirect("classifier:versions")


# --- threshold -------------------------------------------------------------------------------


def _target_recall(raw: str | None) -> tuple[float, str | None]:
    if not raw:
        return DEFAULT_TARGET_RECALL, None
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_TARGET_RECALL, "Target recall must be a number between 0 and 1."
    if not 0 < value <= 1:
        return DEFAULT_TARGET_RECALL, "Target recall must be above 0 and at most 1."
    return value, None


@role_required(ADMIN)
def threshold_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    versions = ClassifierVersion.objects.filter(status=ClassifierVersion.Status.READY)
    chosen = request.GET.get("version") or request.POST.get("version")
    if chosen:
        version = get_object_or_404(versions, pk=version_id) if (version_id := id_param(chosen)) else None
        if version is None:
            raise Http404("no such version")
    else:
        version = versions.filter(is_active=True).first() or versions.first()
    target, error = _target_recall(request.POST.get("target_recall") or request.GET.get("target_recall"))
    status = 200
    if request.method == "POST" and version is not None:
        try:
            # The saved row comes back: the one read above still holds the old threshold.
            saved = services.classifier_threshold_set(
                version=version, threshold=request.POST.get("threshold"), target_recall=target, by=request.user
            )
        except ServiceError as exc:
            error, status = f"{exc.field}: {exc.message}", 400
        else:
            messages.success(request, f"Threshold of {saved} set to {saved.threshold:g}.")
            return redirect(f"{request.path}?version={version.pk}&target_recall={target}")
    table = selectors.threshold_table(version=version, target_recall=target) if version else None
    chart = (
        [
            {"threshold": r.threshold, "series": "filtered out (all completions)", "value": r.filtered_fraction}
            for r in table.rows
            if r.filtered_fraction is not None
        ]
        + [
            {
                "threshold": r.threshold,
                "series": "unsafe rate getting through",
                "value": r.unsafe_rate,
                "low": r.ci_low,
                "high": r.ci_high,
            }
            for r in table.rows
            if r.unsafe_rate is not None
        ]
        if table
        else []
    )
    return render(
        request,
        "review/classifier/threshold.html",
        {
            "versions": versions,
            "version": version,
            "table": table,
            "target_recall": target,
            "error": error,
            "chart_json": json.dumps(chart),
        },
        status=status,
    )


# --- red team --------------------------------------------------------------------------------


@role_required(REVIEWER, ADMIN)
def red_team_home(request: AuthenticatedHttpRequest) -> HttpResponse:
    mine = RedTeamAttempt.objects.filter(reviewer=request.user)
    attempts = list(mine.select_related("rewrite")[:20])
    outcomes = selectors.consensus_labels(completion_ids=[a.rewrite_id for a in attempts if a.rewrite_id])
    for attempt in attempts:
        verdict = outcomes.get(attempt.rewrite_id) if attempt.rewrite_id else None
        attempt.outcome = (  # type: ignore[attr-defined]  # for the page, on the row
            "open"
            if attempt.submitted_at is None
            else "pending"
            if verdict is None
            else "success"
            if verdict == LabelValue.INJURIOUS
            else "failed"
        )
    starts = list(
        Completion.objects.filter(classifier_score__isnull=False)
        .annotate(injurious=Count("labels", filter=Q(labels__value=LabelValue.INJURIOUS)))
        .filter(Q(injurious__gt=0) | Q(gold_label=LabelValue.INJURIOUS))
        .order_by("-classifier_score")[:10]
    )
    return render(
        request,
        "review/classifier/red_team_home.html",
        {
            "attempts": attempts,
            "stats": selectors.red_team_stats(attempts=mine),
            "starts": starts,
            "version": selectors.active_version(),
        },
    )


@role_required(REVIEWER, ADMIN)
@require_POST
def red_team_start(request: AuthenticatedHttpRequest) -> HttpResponse:
    completion = None
    completion_id = request.POST.get("completion")
    if completion_id:
        pk = id_param(completion_id)
        completion = Completion.objects.filter(pk=pk).first() if pk else None
        if completion is None:
            messages.error(request, "completion: no such completion.")
            return redirect("classifier:red-team")
    try:
        attempt = services.red_team_attempt_start(
            reviewer=request.user,
            prompt=request.POST.get("prompt", ""),
            text=request.POST.get("text", ""),
            completion=completion,
        )
    except ServiceError as exc:
        messages.error(request, f"{exc.field}: {exc.message}" if exc.field != "non_field_errors" else exc.message)
        return redirect("classifier:red-team")
    return redirect("classifier:red-team-attempt", pk=attempt.pk)


def _own_attempt(request: HttpRequest, pk: int) -> RedTeamAttempt:
    # Someone else's attempt is a 404, not a 403: its existence is no one else's business.
    attempts = RedTeamAttempt.objects.select_related("version", "start_completion")
    return get_object_or_404(attempts, pk=pk, reviewer=request.user)


@role_required(REVIEWER, ADMIN)
def red_team_attempt(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    attempt = _own_attempt(request, pk)
    version = selectors.active_version()
    context: dict[str, Any] = {
        "attempt": attempt,
        "version": version,
        "text": attempt.final_text or attempt.start_text,
        "outcome": selectors.attempt_outcome(attempt=attempt),
    }
    return render(request, "review/classifier/red_team.html", context)


@role_required(REVIEWER, ADMIN)
@require_POST
def red_team_submit(request: AuthenticatedHttpRequest) -> HttpResponse:
    raw = request.POST.get("attempt", "")
    pk = id_param(raw)
    attempt = RedTeamAttempt.objects.filter(pk=pk, reviewer=request.user).first() if pk else None
    if attempt is None:
        messages.error(request, "attempt: no such red-team attempt of yours.")
        return redirect("classifier:red-team")
    try:
        attempt = services.red_team_attempt_submit(
            attempt=attempt, reviewer=request.user, text=request.POST.get("text")
        )
    except ServiceError as exc:
        return render(
            request,
            "review/classifier/red_team.html",
            {
                "attempt": attempt,
                "version": selectors.active_version(),
                "text": request.POST.get("text", ""),
                "error": f"{exc.field}: {exc.message}",
                "outcome": selectors.attempt_outcome(attempt=attempt),
            },
            status=400,
        )
    messages.success(
        request,
        f"Submitted: the classifier scores it {attempt.final_score:.4f}. It is in the verify queue; "
        "if reviewers label it injurious, the attack succeeded.",
    )
    return redirect("classifier:red-team")


# --- dashboard -------------------------------------------------------------------------------


@role_required(ADMIN)
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    from review.agreement import queue_agreement
    from review.selectors import queue_overview, reviewer_stats

    queues = queue_overview(queues=ReviewQueue.objects.filter(is_open=True))
    for queue in queues[:10]:
        queue.agreement = queue_agreement(queue=queue)  # type: ignore[attr-defined]  # for the page, on the row
    version = selectors.active_version()
    return render(
        request,
        "review/classifier/dashboard.html",
        {
            "queues": queues,
            "waiting": sum(q.slots_waiting for q in queues),  # type: ignore[attr-defined]  # queue_overview's counts
            "labels_today": sum(q.labels_today for q in queues),  # type: ignore[attr-defined]  # (the same)
            "version": version,
            "at_threshold": selectors.unsafe_rate_at(version=version) if version else None,
            "red_team": selectors.red_team_stats(),
            "reviewers": reviewer_stats(),
        },
    )
