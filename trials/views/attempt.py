"""The attempt page: starting the attempt, the page and its live parts (the clock, state, scores), and
the expert's and the admin's actions on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from audit.selectors import audit_events
from rebench_site.errors import ServiceError
from rebench_site.roles import ADMIN, EXPERT, AuthenticatedHttpRequest, is_admin, role_required
from trials import selectors, services
from trials.forms import NoteForm, TechnicalPauseForm
from trials.grading import grading
from trials.models import Attempt, Note, Pause, Reservation
from trials.views._shared import _form_error, _visible_attempt


@require_POST
@role_required(EXPERT)
def attempt_start(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    reservation = get_object_or_404(Reservation, pk=pk)
    try:
        attempt = services.attempt_start(reservation=reservation, by=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("trials:my")
    return redirect("trials:attempt", pk=attempt.pk)


def _visible_attempt_now(request: HttpRequest, pk: int) -> Attempt:
    """As _visible_attempt; one past its deadline is ended there first, so the page never shows it running."""
    attempt = _visible_attempt(request, pk)
    if services.attempt_end_if_overdue(attempt_id=attempt.pk):
        attempt = _visible_attempt(request, pk)
    return attempt


def _attempt_context(request: HttpRequest, attempt: Attempt) -> dict[str, Any]:
    frozen = selectors.attempt_frozen_reason(attempt)
    clock = selectors.attempt_clock(attempt)
    silent_since = selectors.attempt_workstation_silence(attempt, clock.server_now)
    scores = grading().page_scores(attempt, request.user)
    preparing = selectors.attempt_preparing(attempt)
    return {
        "attempt": attempt,
        "clock": clock,
        "live_version": selectors.attempt_live_marker(attempt, clock, scoring=grading().page_marker(attempt)),
        "preparing": preparing,
        "is_slow_to_prepare": preparing in ("workspace", "scoring")
        and (clock.server_now - attempt.started_at).total_seconds() > selectors.PREPARING_SLOW_SECONDS,
        "frozen_message": selectors.FROZEN_MESSAGES.get(frozen or "", ""),
        "workstation_silent_since": silent_since,
        "outage_pause_at": silent_since + settings.WORKSTATION_OFFLINE_AFTER if silent_since else None,
        "break_background_work": settings.SANDBOX_BREAK_BACKGROUND_WORK,
        "is_owner": attempt.user_id == request.user.pk,
        "ssh": selectors.attempt_ssh_command(attempt) if attempt.is_local and attempt.is_running else None,
        "upload_max_mb": settings.ATTEMPT_UPLOAD_MAX_MB,
        "note_form": NoteForm(),
        "technical_form": TechnicalPauseForm(),
        "exclusion_reasons": Attempt.Exclusion.choices,
        "audit_events": list(audit_events(attempt_id=attempt.pk)[:100]) if is_admin(request.user) else [],
        "notes": attempt.notes.all(),
        "pauses": attempt.pauses.all(),
        **scores,
    }


@role_required(EXPERT, ADMIN)
def attempt_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    attempt = _visible_attempt_now(request, pk)
    return render(request, "trials/attempt.html", _attempt_context(request, attempt))


@require_GET
@role_required(EXPERT, ADMIN)
def attempt_clock(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The countdown's numbers, and `version`: when it changes, the page fetches its live parts."""
    attempt = _visible_attempt_now(request, pk)
    clock = selectors.attempt_clock(attempt)
    return JsonResponse(
        {
            # "preparing" until the environment is ready: the countdown holds at the full time meanwhile.
            "state": clock.page_state,
            "clock_started_at": clock.clock_started_at.isoformat() if clock.clock_started_at else None,
            "elapsed_seconds": clock.elapsed_seconds,
            "remaining_seconds": clock.remaining_seconds,
            "time_limit_seconds": clock.time_limit_seconds,
            "deadline": clock.deadline.isoformat() if clock.deadline else None,
            "pause_reason": clock.pause_reason,
            "end_reason": attempt.end_reason or None,
            "server_now": clock.server_now.isoformat(),
            "version": selectors.attempt_live_marker(attempt, clock, scoring=grading().page_marker(attempt)),
        }
    )


@require_GET
@role_required(EXPERT, ADMIN)
def attempt_live(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The attempt page's live parts (state, actions, set-up, scores, notes, pauses; the summary once ended)."""
    attempt = _visible_attempt_now(request, pk)
    return render(request, "trials/_attempt_live.html", _attempt_context(request, attempt))


def _attempt_action(request: HttpRequest, pk: int, action: Callable[[Attempt], object], done: str) -> HttpResponse:
    """Run `action(attempt)`; say `done` if the service accepted it, or why it refused."""
    attempt = _visible_attempt(request, pk)
    try:
        action(attempt)
        messages.success(request, done)
    except ServiceError as exc:
        messages.error(request, exc.message)
    if request.headers.get("HX-Request") == "true":
        # From the page's bar: answer with its live parts, so the terminal and any draft stay put.
        return render(request, "trials/_attempt_live.html", _attempt_context(request, _visible_attempt(request, pk)))
    return redirect("trials:attempt", pk=pk)


@require_POST
@role_required(EXPERT, ADMIN)
def attempt_pause(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", Pause.Reason.BREAK)
    return _attempt_action(
        request,
        pk,
        lambda a: services.attempt_pause(attempt=a, by=request.user, reason=reason),
        "Paused: the clock has stopped.",
    )


@require_POST
@role_required(EXPERT, ADMIN)
def attempt_resume(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _attempt_action(
        request, pk, lambda a: services.attempt_resume(attempt=a, by=request.user), "Resumed: the clock is running."
    )


@require_POST
@role_required(EXPERT, ADMIN)
def attempt_preparation_retry(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _attempt_action(
        request,
        pk,
        lambda a: services.attempt_preparation_retry(attempt=a, by=request.user),
        "Preparing the environment again: the clock starts when it is ready.",
    )


@require_POST
@role_required(EXPERT)
def attempt_submit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _attempt_action(request, pk, lambda a: services.attempt_submit(attempt=a, by=request.user), "Submitted.")


@require_POST
@role_required(EXPERT)
def attempt_note(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    attempt = _visible_attempt(request, pk)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            services.attempt_add_note(attempt=attempt, by=request.user, body=form.cleaned_data["body"])
            form = NoteForm()
        except ServiceError as exc:
            _form_error(form, exc)
    if request.headers.get("HX-Request"):
        status = 400 if form.errors else 200
        notes = Note.objects.filter(attempt=attempt)  # not the prefetched list: it predates the new note
        return render(
            request,
            "trials/_notes.html",
            {"attempt": attempt, "notes": notes, "note_form": form, "is_owner": True},
            status=status,
        )
    for error in form.errors.values():
        messages.error(request, " ".join(str(e) for e in error))
    return redirect("trials:attempt", pk=pk)


# --- admin pages -------------------------------------------------------------------------------


@require_POST
@role_required(ADMIN)
def attempt_end(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _attempt_action(
        request, pk, lambda a: services.attempt_end_by_admin(attempt=a, by=request.user), "Attempt ended."
    )


@require_POST
@role_required(ADMIN)
def attempt_exclude(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    reason, note = request.POST.get("reason", ""), request.POST.get("note", "")
    return _attempt_action(
        request,
        pk,
        lambda a: services.attempt_exclude(attempt=a, by=request.user, reason=reason, note=note),
        "Excluded: the run leaves every leaderboard at the next recompute.",
    )


@require_POST
@role_required(ADMIN)
def attempt_include(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _attempt_action(
        request,
        pk,
        lambda a: services.attempt_include(attempt=a, by=request.user),
        "Included: the run counts on leaderboards again at the next recompute.",
    )


@require_POST
@role_required(ADMIN)
def attempt_technical_pause(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    form = TechnicalPauseForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(str(e) for e in errors)}")
        return redirect("trials:attempt", pk=pk)
    data = form.cleaned_data
    return _attempt_action(
        request,
        pk,
        lambda a: services.attempt_add_pause(
            attempt=a,
            by=request.user,
            started_at=data["started_at"],
            ended_at=data["ended_at"],
            reason=data["reason"],
            note=data["note"],
        ),
        "Pause added: the time is given back.",
    )


@require_POST
@role_required(ADMIN)
def attempt_message(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """An admin's message to every open terminal of the attempt (a line in each xterm and a banner)."""
    message = request.POST.get("message", "")
    return _attempt_action(
        request,
        pk,
        lambda a: services.terminals_send_notice(attempt=a, by=request.user, message=message),
        "Message sent to the attempt's open terminals.",
    )
