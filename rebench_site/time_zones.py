"""The zone a request's times are shown and read in, and the page where a user picks theirs.

Stored times are UTC; only rendering and form input follow the active zone, which
rebench_site.middleware.TimeZoneMiddleware activates per request: the user's profile setting if set,
else the zone the browser reports in the `tz` cookie (static/js/site.js sets it), else TIME_ZONE.
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from rebench_site.models import Profile
from rebench_site.roles import AuthenticatedHttpRequest

COOKIE = "tz"
# The profile's zone, kept in the session at login and on saving the page below. Another session
# of the same user picks a change up at its next login.
SESSION_KEY = "time_zone"
# The longest IANA name is 32 characters; anything much longer is not worth a lookup.
MAX_NAME = 64


@functools.cache
def allowed_zones() -> frozenset[str]:
    """IANA zone names. Not `localtime`, which zoneinfo finds in the server's zone folder: it is
    whatever zone the server runs in, not a place a user is in."""
    return frozenset(zoneinfo.available_timezones() - {"localtime", "posixrules"})


def zone_named(name: object) -> zoneinfo.ZoneInfo | None:
    """The zone of that name, or None for anything else (from a cookie: it may hold any text)."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or name not in allowed_zones():
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):  # listed but unreadable: a broken zone folder
        return None


def stored_zone_name(user: Any) -> str:
    return Profile.objects.filter(user=user).values_list("time_zone", flat=True).first() or ""


def remember_zone_at_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """user_logged_in: keeps the profile's zone in the session, so pages read it without a query each."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = stored_zone_name(user)


def profile_zone(request: HttpRequest) -> zoneinfo.ZoneInfo | None:
    """The zone the user picked, from the session (a session from before the login signal kept it
    reads the profile once)."""
    if not request.user.is_authenticated:
        return None
    name = request.session.get(SESSION_KEY)
    if not isinstance(name, str):
        name = request.session[SESSION_KEY] = stored_zone_name(request.user)
    return zone_named(name)


def browser_zone(request: HttpRequest) -> zoneinfo.ZoneInfo | None:
    return zone_named(request.COOKIES.get(COOKIE))


def zone_for(request: HttpRequest) -> zoneinfo.ZoneInfo:
    """The profile's zone, else the browser's, else the site's."""
    return profile_zone(request) or browser_zone(request) or zoneinfo.ZoneInfo(settings.TIME_ZONE)


# --- The page ---


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(required=False, label="Time zone")

    def __init__(self, *args: Any, browser: zoneinfo.ZoneInfo | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = f"currently {browser.key}" if browser else f"not reported yet: {settings.TIME_ZONE} until it is"
        time_zone = self.fields["time_zone"]
        assert isinstance(time_zone, forms.ChoiceField)
        time_zone.choices = [("", f"Browser's ({current})")] + [(name, name) for name in sorted(allowed_zones())]


@login_required
def time_zone_settings(request: AuthenticatedHttpRequest) -> HttpResponse:
    profile = Profile.objects.filter(user=request.user).first()
    initial = {"time_zone": profile.time_zone if profile else ""}
    form = TimeZoneForm(
        request.POST if request.method == "POST" else None, initial=initial, browser=browser_zone(request)
    )
    if request.method == "POST" and form.is_valid():
        name = form.cleaned_data["time_zone"]
        Profile.objects.update_or_create(user=request.user, defaults={"time_zone": name})
        request.session[SESSION_KEY] = name
        messages.success(request, f"Times now show in {name}." if name else "Times now show in your browser's zone.")
        return redirect("time_zone")
    return render(
        request,
        "registration/time_zone.html",
        {"form": form},
        status=400 if request.method == "POST" else 200,
    )
