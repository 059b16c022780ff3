"""What the trials pages share: the day a page shows, a refusal put on its form, a form's safe `next`,
and the attempt a user may see."""

from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.contrib import messages
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from rebench_site.errors import ServiceError
from trials import selectors
from trials.models import Attempt

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


def _form_error(form: forms.BaseForm, exc: ServiceError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


def _next_or(request: HttpRequest, default: str) -> str:
    """The form's `next` when it is a page of this site, else the named default."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return reverse(default)


def _visible_attempt(request: HttpRequest, pk: int) -> Attempt:
    """The attempt if the user owns it or is an admin; 404 otherwise, so ids don't leak."""
    attempts = selectors.attempts_visible_to(request.user).select_related(
        "environment", "workstation", "reservation", "user"
    )
    return get_object_or_404(attempts.prefetch_related("pauses", "notes"), pk=pk)
