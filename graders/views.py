"""Grading pages: the attempt's Score button and live score card (htmx), and the admin's job list."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from environments.models import Environment, EnvironmentConfiguration
from graders import listing, selectors, services
from graders.models import ScoringJob
from rebench_site.errors import ServiceError
from rebench_site.params import id_param
from rebench_site.roles import ADMIN, EXPERT, AuthenticatedHttpRequest, role_required
from trials.models import Attempt
from trials.selectors import attempts_visible_to


def _visible_attempt(request: HttpRequest, pk: int) -> Attempt:
    return get_object_or_404(attempts_visible_to(request.user).select_related("environment", "workstation"), pk=pk)


def _card(request: HttpRequest, attempt: Attempt, status: int = 200) -> HttpResponse:
    context = {"attempt": attempt, **selectors.attempt_scores(attempt, request.user)}
    return render(request, "graders/_score_card.html", context, status=status)


@require_POST
@role_required(EXPERT, ADMIN)
def attempt_score(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    attempt = _visible_attempt(request, pk)
    error = ""
    try:
        services.scoring_job_request(attempt=attempt, by=request.user)
    except ServiceError as exc:
        error = exc.message
    if request.headers.get("HX-Request"):
        response = _card(request, attempt, status=400 if error else 200)
        if error:
            response.content = response.content.replace(b"<!--score-error-->", f"<p class='error'>{error}</p>".encode())
        return response
    if error:
        messages.error(request, error)
    return redirect("trials:attempt", pk=pk)


@require_GET
@role_required(EXPERT, ADMIN)
def attempt_score_card(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _card(request, _visible_attempt(request, pk))


def _job_filter_values() -> dict[str, list[str]]:
    """What each filter of the job list may be: its options, and what a query string is checked against."""
    return {
        "status": ScoringJob.Status.values,
        "kind": ScoringJob.Kind.values,
        "environment": list(Environment.objects.order_by("slug").values_list("slug", flat=True)),
        "configuration": list(
            EnvironmentConfiguration.objects.order_by("name").values_list("name", flat=True).distinct()
        ),
    }


@require_GET
@role_required(ADMIN)
def job_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every scoring job, newest first, 50 a page; filtered by state, kind, environment and configuration,
    searched by expert, attempt number or job id."""
    known = _job_filter_values()
    filters = listing.list_query(request.GET, known, request)
    if tidy := listing.tidy_url(request, filters):
        return redirect(tidy)
    page = listing.paginate(selectors.scoring_jobs_for_admin(**filters.values), request.GET.get("page"))
    return render(
        request,
        "graders/job_list.html",
        {
            "jobs": page.object_list,
            "page": page,
            "filters": filters.values,
            "query": filters.query,
            "back": listing.with_page(filters.query, page.number),
            "statuses": ScoringJob.Status.choices,
            "kinds": ScoringJob.Kind.choices,
            "environments": known["environment"],
            "configurations": known["configuration"],
        },
    )


@require_POST
@role_required(ADMIN)
def job_rerun(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The job id comes in the form (`job`); an unknown one is a message, not an error page.

    An unfinished job (a stuck worker) is closed first, with its one entry saying so."""

    def rerun(job: ScoringJob) -> str:
        again = services.scoring_job_rerun(job=job, by=request.user)
        return f"Queued {again.pk} on {again.queue_name}."

    return _act_on_posted_job(request, rerun)


@require_POST
@role_required(ADMIN)
def job_close(request: AuthenticatedHttpRequest) -> HttpResponse:
    """End an unfinished job: an invalid entry marked lost, the attempt's clock running again."""

    def close(job: ScoringJob) -> str:
        services.scoring_job_close(job=job, by=request.user)
        return f"Closed {job.pk}; the attempt's clock runs again."

    return _act_on_posted_job(request, close)


def _act_on_posted_job(request: HttpRequest, act: Callable[[ScoringJob], str]) -> HttpResponse:
    """Do `act` to the job named in the form; its message, or the refusal's, shows on the jobs page."""
    job = _posted_job(request)
    if job is not None:
        try:
            messages.success(request, act(job))
        except ServiceError as exc:
            messages.error(request, exc.message)
    # Back to the page of the list it was done from: its filters re-read, so nothing else passes through.
    back = QueryDict(request.POST.get("back", ""))
    query = listing.with_page(listing.list_query(back, _job_filter_values()).query, id_param(back.get("page", "")))
    return redirect(f"{reverse('graders:jobs')}?{query}" if query else reverse("graders:jobs"))


def _posted_job(request: HttpRequest) -> ScoringJob | None:
    try:
        job = ScoringJob.objects.filter(pk=request.POST.get("job", "")).first()
    except ValidationError:
        job = None
    if job is None:
        messages.error(request, "No such scoring job.")
    return job


@role_required(ADMIN)
def manual_scores(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Attempts whose Task Standard family scores by hand (its `score` returned None): each with its
    submission and a form for the score and how it was reached; the last ones entered below."""
    status = 200
    if request.method == "POST":
        attempt = get_object_or_404(Attempt, pk=id_param(request.POST.get("attempt")) or 0)
        try:
            score = float(request.POST.get("score", ""))
        except ValueError:
            messages.error(request, f"Attempt {attempt.pk}: score: a number, please.")
            status = 400
        else:
            try:
                services.attempt_score_enter(
                    attempt=attempt, by=request.user, score=score, note=request.POST.get("note", "")
                )
            except ServiceError as exc:
                messages.error(request, f"Attempt {attempt.pk}: {exc.field or 'score'}: {exc.message}")
                status = 400
            else:
                messages.success(request, f"Attempt {attempt.pk} scored {score:g} by hand.")
                return redirect("graders:manual-scores")
    return render(
        request,
        "graders/manual_scores.html",
        {
            "awaiting": list(selectors.entries_awaiting_manual_score()[:100]),
            "entered": list(selectors.manual_score_entries()[:50]),
        },
        status=status,
    )
