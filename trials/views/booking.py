"""The expert's pages: their reservations and attempts, booking a slot, and cancelling a reservation."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from environments.models import Environment
from rebench_site.errors import ServiceError
from rebench_site.roles import ADMIN, EXPERT, AuthenticatedHttpRequest, role_required
from trials import selectors, services
from trials.forms import BookingForm
from trials.models import Reservation, Workstation
from trials.views._shared import _day, _day_nav, _form_error, _next_or


@role_required(EXPERT)
def my_trials(request: AuthenticatedHttpRequest) -> HttpResponse:
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
def book_choose(request: AuthenticatedHttpRequest) -> HttpResponse:
    environments = list(Environment.objects.filter(is_active=True))
    left = selectors.attempts_left(expert=request.user, environments=environments)
    return render(request, "trials/book_choose.html", {"rows": [(env, left[env.pk]) for env in environments]})


@role_required(EXPERT)
def book_environment(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    environment = get_object_or_404(Environment, slug=slug, is_active=True)
    day = _day(request)
    eligible = [ws.pk for ws in selectors.eligible_workstations(environment)]
    # With one workstation that fits, the form starts on it rather than on an empty choice.
    form = BookingForm(request.POST or None, initial={"workstation": eligible[0]} if len(eligible) == 1 else None)
    workstation_field = form.fields["workstation"]
    assert isinstance(workstation_field, forms.ModelChoiceField)
    workstation_field.queryset = Workstation.objects.filter(pk__in=eligible)
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
def reservation_cancel(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    reservation = get_object_or_404(Reservation, pk=pk)
    try:
        services.reservation_cancel(reservation=reservation, by=request.user)
        messages.success(request, "Reservation cancelled.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect(_next_or(request, "home"))
