"""Pages for experts (book, attempt) and admins (schedule, workstations); thin, they call services."""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from audit.selectors import audit_events
from environments.models import Environment
from rebench_site.errors import ServiceError
from rebench_site.roles import ADMIN, EXPERT, is_admin, role_required
from trials import selectors, services
from trials.forms import (
    AdminBookingForm,
    BookingForm,
    NoteForm,
    ReservationEndForm,
    TechnicalPauseForm,
    WorkstationForm,
)
from trials.grading import grading
from trials.models import Attempt, Note, Pause, Reservation, TerminalSession, Workstation
from trials.recording import activity_timeline, cast_lines, recording_exists, storage

# The days the booking and schedule pages show.
DAYS = (date(2000, 1, 1), date(2200, 12, 31))


def _day(request: HttpRequest) -> date:
    raw = request.GET.get("day")
    today = timezone.localdate()
    if not raw:
        return today
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        messages.error(request, f"{raw!r} is not a date (YYYY-MM-DD); showing today.")
        return today
    # The page links the day before and after, and reads slots to the day's end: a day at either
    # end of the calendar has neither.
    if not DAYS[0] <= day <= DAYS[1]:
        messages.error(request, f"Pick a day between {DAYS[0]} and {DAYS[1]}; showing today.")
        return today
    return day


def _day_nav(day: date) -> dict[str, date]:
    return {"day": day, "prev_day": day - timedelta(days=1), "next_day": day + timedelta(days=1)}


def _form_error(form, exc: ServiceError) -> None:  # type: ignore[no-untyped-def]
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


# --- expert pages ------------------------------------------------------------------------------


@role_required(EXPERT)
def my_trials(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    reservations = list(selectors.reservations_for(request.user))
    attempts = list(selectors.attempts_for(request.user))
    return render(
        request,
        "trials/my.html",
        {
            "reservations": [(r, r.state(now), getattr(r, "attempt", None)) for r in reservations],
            "attempts": [(a, selectors.attempt_clock(a, now)) for a in attempts],
        },
    )


@role_required(EXPERT, ADMIN)
def book_choose(request: HttpRequest) -> HttpResponse:
    environments = list(Environment.objects.filter(is_active=True))
    left = selectors.attempts_left(expert=request.user, environments=environments)
    return render(request, "trials/book_choose.html", {"rows": [(env, left[env.pk]) for env in environments]})


@role_required(EXPERT)
def book_environment(request: HttpRequest, slug: str) -> HttpResponse:
    environment = get_object_or_404(Environment, slug=slug, is_active=True)
    day = _day(request)
    eligible = [ws.pk for ws in selectors.eligible_workstations(environment)]
    # With one workstation that fits, the form starts on it rather than on an empty choice.
    form = BookingForm(request.POST or None, initial={"workstation": eligible[0]} if len(eligible) == 1 else None)
    form.fields["workstation"].queryset = Workstation.objects.filter(pk__in=eligible)
    if request.method == "POST" and form.is_valid():
        try:
            reservation = services.reservation_create(
                expert=request.user,
                environment=environment,
                workstation=form.cleaned_data["workstation"],
                starts_at=form.cleaned_data["starts_at"],
                created_by=request.user,
            )
        except ServiceError as exc:
            _form_error(form, exc)
        else:
            messages.success(
                request,
                f"Booked {environment.title} on {reservation.workstation.name} from "
                f"{timezone.localtime(reservation.starts_at):%a %d %b %H:%M}.",
            )
            return redirect("trials:my")
    rows = selectors.free_slots(environment=environment, day=day, expert=request.user)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "trials/book_environment.html",
        {
            "environment": environment,
            "rows": rows,
            "form": form,
            "slot_length": services.reservation_min_length(environment),
            "attempts_left": selectors.attempts_left(expert=request.user, environments=[environment])[environment.pk],
            **_day_nav(day),
        },
        status=status,
    )


@require_POST
@role_required(EXPERT, ADMIN)
def reservation_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    reservation = get_object_or_404(Reservation, pk=pk)
    try:
        services.reservation_cancel(reservation=reservation, by=request.user)
        messages.success(request, "Reservation cancelled.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect(_next_or(request, "home"))


def _next_or(request: HttpRequest, default: str) -> str:
    """The form's `next` when it is a page of this site, else the named default."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return reverse(default)


@role_required(ADMIN)
def reservation_list(request: HttpRequest) -> HttpResponse:
    """Every reservation, 50 a page: now and upcoming first, or the past, the cancelled, or all; each
    live one with its end to move and, unused, a cancel."""
    filters = {
        "view": request.GET.get("view", "").strip() or "live",
        "environment": request.GET.get("environment", "").strip(),
        "q": request.GET.get("q", "").strip(),
    }
    if filters["view"] not in selectors.RESERVATION_VIEWS:
        messages.error(request, f"No view {filters['view']!r}: showing now and upcoming.")
        filters["view"] = "live"
    slugs = list(Environment.objects.order_by("slug").values_list("slug", flat=True))
    if filters["environment"] and filters["environment"] not in slugs:
        messages.error(request, f"No environment {filters['environment']!r}: showing every environment.")
        filters["environment"] = ""
    now = timezone.now()
    page = Paginator(selectors.reservations_for_admin(**filters, now=now), RESERVATIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "trials/reservation_list.html",
        {
            "rows": [
                (r, r.state(now), ReservationEndForm(initial={"ends_at": timezone.localtime(r.ends_at)})) for r in page
            ],
            "page": page,
            "filters": filters,
            "query": urlencode({k: v for k, v in filters.items() if v and not (k == "view" and v == "live")}),
            "views": selectors.RESERVATION_VIEWS.items(),
            "environments": slugs,
        },
    )


RESERVATIONS_PER_PAGE = 50


@require_POST
@role_required(ADMIN)
def reservation_end(request: HttpRequest, pk: int) -> HttpResponse:
    reservation = get_object_or_404(Reservation, pk=pk)
    form = ReservationEndForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(errors)}")
        return redirect(_next_or(request, "trials:reservations"))
    try:
        changed = services.reservation_change_end(
            reservation=reservation,
            by=request.user,
            ends_at=form.cleaned_data["ends_at"],
            note=form.cleaned_data["note"],
        )
    except ServiceError as exc:
        messages.error(request, f"Reservation {pk}: {exc.message}")
    else:
        messages.success(request, f"Reservation {pk} now ends {timezone.localtime(changed.ends_at):%a %d %b %H:%M}.")
    return redirect(_next_or(request, "trials:reservations"))


@require_POST
@role_required(EXPERT)
def attempt_start(request: HttpRequest, pk: int) -> HttpResponse:
    reservation = get_object_or_404(Reservation, pk=pk)
    try:
        attempt = services.attempt_start(reservation=reservation, by=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("trials:my")
    return redirect("trials:attempt", pk=attempt.pk)


def _visible_attempt(request: HttpRequest, pk: int) -> Attempt:
    """The attempt if the user owns it or is an admin; 404 otherwise, so ids don't leak."""
    attempts = selectors.attempts_visible_to(request.user).select_related(
        "environment", "workstation", "reservation", "user"
    )
    return get_object_or_404(attempts.prefetch_related("pauses", "notes"), pk=pk)


def _visible_attempt_now(request: HttpRequest, pk: int) -> Attempt:
    """As _visible_attempt; one past its deadline is ended there first, so the page never shows it running."""
    attempt = _visible_attempt(request, pk)
    if services.attempt_end_if_overdue(attempt_id=attempt.pk):
        attempt = _visible_attempt(request, pk)
    return attempt


def _attempt_context(request: HttpRequest, attempt: Attempt) -> dict:
    frozen = selectors.attempt_frozen_reason(attempt)
    clock = selectors.attempt_clock(attempt)
    scores = grading().page_scores(attempt, request.user)
    job = scores["score_job"]
    preparing = selectors.attempt_preparing(
        attempt,
        has_scorer=scores["has_scorer"],
        scored=bool(scores["score_rows"]),
        scoring_running=job is not None and not job["finished"],
    )
    return {
        "attempt": attempt,
        "clock": clock,
        "live_version": selectors.attempt_live_marker(attempt, clock, scoring=grading().page_marker(attempt)),
        "preparing": preparing,
        "is_slow_to_prepare": preparing == "workspace"
        and (clock.server_now - attempt.started_at).total_seconds() > selectors.PREPARING_SLOW_SECONDS,
        "frozen_message": selectors.FROZEN_MESSAGES.get(frozen or "", ""),
        "break_background_work": settings.SANDBOX_BREAK_BACKGROUND_WORK,
        "is_owner": attempt.user_id == request.user.pk,
        "note_form": NoteForm(),
        "technical_form": TechnicalPauseForm(),
        "exclusion_reasons": Attempt.Exclusion.choices,
        "audit_events": list(audit_events(attempt_id=attempt.pk)[:100]) if is_admin(request.user) else [],
        "notes": attempt.notes.all(),
        "pauses": attempt.pauses.all(),
        **scores,
    }


@role_required(EXPERT, ADMIN)
def attempt_detail(request: HttpRequest, pk: int) -> HttpResponse:
    attempt = _visible_attempt_now(request, pk)
    return render(request, "trials/attempt.html", _attempt_context(request, attempt))


@require_GET
@role_required(EXPERT, ADMIN)
def attempt_clock(request: HttpRequest, pk: int) -> HttpResponse:
    """The countdown's numbers, and `version`: when it changes, the page fetches its live parts."""
    attempt = _visible_attempt_now(request, pk)
    clock = selectors.attempt_clock(attempt)
    return JsonResponse(
        {
            "state": clock.state,
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
def attempt_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The attempt page's live parts (state, actions, set-up, scores, notes, pauses; the summary once ended)."""
    attempt = _visible_attempt_now(request, pk)
    return render(request, "trials/_attempt_live.html", _attempt_context(request, attempt))


def _attempt_action(request: HttpRequest, pk: int, action, done: str) -> HttpResponse:  # type: ignore[no-untyped-def]
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
def attempt_pause(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", Pause.Reason.BREAK)
    return _attempt_action(
        request,
        pk,
        lambda a: services.attempt_pause(attempt=a, by=request.user, reason=reason),
        "Paused: the clock has stopped.",
    )


@require_POST
@role_required(EXPERT, ADMIN)
def attempt_resume(request: HttpRequest, pk: int) -> HttpResponse:
    return _attempt_action(
        request, pk, lambda a: services.attempt_resume(attempt=a, by=request.user), "Resumed: the clock is running."
    )


@require_POST
@role_required(EXPERT)
def attempt_submit(request: HttpRequest, pk: int) -> HttpResponse:
    return _attempt_action(request, pk, lambda a: services.attempt_submit(attempt=a, by=request.user), "Submitted.")


@require_POST
@role_required(EXPERT)
def attempt_note(request: HttpRequest, pk: int) -> HttpResponse:
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
        messages.error(request, " ".join(error))
    return redirect("trials:attempt", pk=pk)


# --- admin pages -------------------------------------------------------------------------------


@require_POST
@role_required(ADMIN)
def attempt_end(request: HttpRequest, pk: int) -> HttpResponse:
    return _attempt_action(
        request, pk, lambda a: services.attempt_end_by_admin(attempt=a, by=request.user), "Attempt ended."
    )


@require_POST
@role_required(ADMIN)
def attempt_exclude(request: HttpRequest, pk: int) -> HttpResponse:
    reason, note = request.POST.get("reason", ""), request.POST.get("note", "")
    return _attempt_action(
        request,
        pk,
        lambda a: services.attempt_exclude(attempt=a, by=request.user, reason=reason, note=note),
        "Excluded: the run leaves every leaderboard at the next recompute.",
    )


@require_POST
@role_required(ADMIN)
def attempt_include(request: HttpRequest, pk: int) -> HttpResponse:
    return _attempt_action(
        request,
        pk,
        lambda a: services.attempt_include(attempt=a, by=request.user),
        "Included: the run counts on leaderboards again at the next recompute.",
    )


@require_POST
@role_required(ADMIN)
def attempt_technical_pause(request: HttpRequest, pk: int) -> HttpResponse:
    form = TechnicalPauseForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(errors)}")
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


@role_required(ADMIN)
def attempt_list(request: HttpRequest) -> HttpResponse:
    """Every attempt and run, newest first, 50 a page; filtered by state, source, environment and who."""
    filters = {name: request.GET.get(name, "").strip() for name in ("status", "source", "environment", "q")}
    known = {
        "status": set(Attempt.Status.values),
        "source": set(Attempt.Source.values),
        "environment": set(Environment.objects.values_list("slug", flat=True)),
    }
    for name, allowed in known.items():
        if filters[name] and filters[name] not in allowed:
            messages.error(request, f"No {name} {filters[name]!r}: showing every {name}.")
            filters[name] = ""
    page = Paginator(selectors.attempts_for_admin(**filters), ATTEMPTS_PER_PAGE).get_page(request.GET.get("page"))
    now = timezone.now()
    return render(
        request,
        "trials/attempt_list.html",
        {
            "attempts": [(a, selectors.attempt_clock(a, now)) for a in page.object_list],
            "page": page,
            "filters": filters,
            "query": urlencode({k: v for k, v in filters.items() if v}),
            "statuses": Attempt.Status.choices,
            "sources": Attempt.Source.choices,
            "environments": Environment.objects.order_by("slug").values_list("slug", flat=True),
        },
    )


ATTEMPTS_PER_PAGE = 50


@role_required(ADMIN)
def schedule(request: HttpRequest) -> HttpResponse:
    day = _day(request)
    form = AdminBookingForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            reservation = services.reservation_create(
                expert=data["expert"],
                environment=data["environment"],
                workstation=data["workstation"],
                starts_at=data["starts_at"],
                created_by=request.user,
            )
        except ServiceError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"Booked {reservation.environment.slug} for {reservation.expert}.")
            return redirect(f"{request.path}?day={timezone.localtime(reservation.starts_at).date().isoformat()}")
    hours, rows = selectors.schedule_grid(day=day)
    return render(
        request,
        "trials/schedule.html",
        {"hours": hours, "rows": rows, "form": form, **_day_nav(day)},
        status=400 if request.method == "POST" else 200,
    )


@role_required(ADMIN)
def workstation_list(request: HttpRequest) -> HttpResponse:
    form = WorkstationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            ws = services.workstation_register(**form.cleaned_data)
        except ServiceError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"Registered {ws.name}; it shows offline until its worker's first heartbeat.")
            return redirect("trials:workstation", pk=ws.pk)
    now = timezone.now()
    workstations = [(ws, ws.effective_status(now)) for ws in Workstation.objects.all()]
    return render(
        request,
        "trials/workstation_list.html",
        {"workstations": workstations, "form": form},
        status=400 if request.method == "POST" else 200,
    )


@role_required(ADMIN)
def workstation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    workstation = get_object_or_404(Workstation, pk=pk)
    if request.method == "POST":
        try:
            services.workstation_set_status(workstation=workstation, status=request.POST.get("status", ""))
            messages.success(request, f"{workstation.name} is now {workstation.status}.")
        except ServiceError as exc:
            messages.error(request, exc.message)
        return redirect("trials:workstation", pk=pk)
    now = timezone.now()
    upcoming = (
        workstation.reservations.filter(cancelled_at__isnull=True, ends_at__gte=now)
        .select_related("expert", "environment")
        .order_by("starts_at")
    )
    return render(
        request,
        "trials/workstation_detail.html",
        {
            "workstation": workstation,
            "status": workstation.effective_status(now),
            "upcoming": upcoming,
            "statuses": Workstation.Status.choices,
        },
    )


# --- terminal recordings -------------------------------------------------------------


def _terminal_number(request: HttpRequest) -> int | None:
    raw = request.GET.get("terminal", "")
    # A tab's number: a few ASCII digits (str.isdigit takes "²"; a 30-digit one overflows the column).
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 4 else None


@require_GET
@role_required(ADMIN)
def terminal_replay(request: HttpRequest, pk: int) -> HttpResponse:
    """Replay one terminal of the attempt (`?terminal=N`, else the first recorded), with the activity timeline."""
    attempt = _visible_attempt(request, pk)
    sessions = [s for s in TerminalSession.objects.filter(attempt=attempt) if recording_exists(s.recording_name)]
    number = _terminal_number(request)
    session = next((s for s in sessions if s.number == number), None) if number else (sessions[0] if sessions else None)
    if number and session is None:
        raise Http404("No recording of that terminal.")
    names = [s.recording_name for s in sessions]
    activity = activity_timeline(names, start=attempt.started_at, end=attempt.ended_at or timezone.now())
    return render(
        request,
        "trials/terminal_replay.html",
        {"attempt": attempt, "session": session, "sessions": sessions, "activity": activity},
    )


@require_GET
@role_required(ADMIN)
def terminal_cast(request: HttpRequest, pk: int) -> HttpResponse:
    """The .cast file of `?terminal=N` (as a download with `&download=1`); without one, back to the replay page."""
    attempt = _visible_attempt(request, pk)
    number = _terminal_number(request) or 1
    session = TerminalSession.objects.filter(attempt=attempt, number=number).first()
    if session is None or not recording_exists(session.recording_name):
        messages.info(request, f"Terminal {number} of this attempt has no recording yet.")
        return redirect("trials:terminal-replay", pk=pk)
    filename = f"attempt-{attempt.pk}-terminal-{number}.cast"
    attachment = request.GET.get("download") == "1"
    store = storage()
    if store.exists(session.recording_name):  # finished: the one file, streamed from storage
        return FileResponse(
            store.open(session.recording_name, "rb"),
            as_attachment=attachment,
            filename=filename,
            content_type="application/x-asciicast",
        )
    # Still running: the uploaded parts and this machine's spool, merged as it is read.
    response = StreamingHttpResponse(
        (line.encode() for line in cast_lines(session.recording_name)), content_type="application/x-asciicast"
    )
    disposition = "attachment" if attachment else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return response


@require_POST
@role_required(ADMIN)
def attempt_message(request: HttpRequest, pk: int) -> HttpResponse:
    """An admin's message to every open terminal of the attempt (a line in each xterm and a banner)."""
    message = request.POST.get("message", "")
    return _attempt_action(
        request,
        pk,
        lambda a: services.terminals_send_notice(attempt=a, by=request.user, message=message),
        "Message sent to the attempt's open terminals.",
    )
