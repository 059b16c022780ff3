"""The admin's overviews: every reservation (with its end to move), every attempt, and the day's schedule."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from environments.models import Environment
from rebench_site.errors import ServiceError
from rebench_site.roles import ADMIN, AuthenticatedHttpRequest, role_required
from trials import selectors, services
from trials.forms import AdminBookingForm, ReservationEndForm
from trials.models import Attempt, Reservation
from trials.views._shared import _day, _day_nav, _form_error, _next_or


@role_required(ADMIN)
def reservation_list(request: AuthenticatedHttpRequest) -> HttpResponse:
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
def reservation_end(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    reservation = get_object_or_404(Reservation, pk=pk)
    form = ReservationEndForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(str(e) for e in errors)}")
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


@role_required(ADMIN)
def attempt_list(request: AuthenticatedHttpRequest) -> HttpResponse:
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
def schedule(request: AuthenticatedHttpRequest) -> HttpResponse:
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
                gpu_count=data["gpu_count"],
                created_by=request.user,
            )
        except ServiceError as exc:
            _form_error(form, exc)
        else:
            messages.success(
                request,
                f"Booked {reservation.environment.slug} for {reservation.expert} "
                f"({reservation.gpus_label} of {reservation.workstation.name}).",
            )
            return redirect(f"{request.path}?day={timezone.localtime(reservation.starts_at).date().isoformat()}")
    hours, rows = selectors.schedule_grid(day=day)
    return render(
        request,
        "trials/schedule.html",
        {"hours": hours, "rows": rows, "form": form, **_day_nav(day)},
        status=400 if request.method == "POST" else 200,
    )
