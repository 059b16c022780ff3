"""Request checks that every view would otherwise have to repeat."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils import timezone

from rebench_site.time_zones import zone_for

FORM = "application/x-www-form-urlencoded"


class RejectNulMiddleware:
    """A NUL character in a query string or a form is a 400: PostgreSQL can't store or even compare
    it (every lookup with it raises DataError, a 500), and no field of ours takes one.

    Multipart bodies are left to their forms (their files may hold any byte); JSON bodies to
    rebench_site.bounded_json, which refuses an escaped NUL."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_nul(request.GET.lists()):
            return HttpResponseBadRequest("NUL characters are not accepted in the query string.")
        # The raw body (a form's NUL arrives as %00): Django parses only POST's, DRF PUT's and PATCH's too.
        if request.content_type == FORM and b"%00" in request.body:
            return HttpResponseBadRequest("NUL characters are not accepted in a form.")
        return self.get_response(request)


def _has_nul(items: Iterable[tuple[str, list[str]]]) -> bool:
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in items)


class TimeZoneMiddleware:
    """Shows and reads times in the user's zone (rebench_site.time_zones.zone_for) for the request.

    Pages and their forms follow it: a datetime-local field is parsed in it, `timezone.localtime`
    converts to it. The API stays on TIME_ZONE: its clients read offsets, not a person's clock, and
    a browser's session should not change what a script sees. Sits after AuthenticationMiddleware,
    whose request.user it reads."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            return self.get_response(request)
        timezone.activate(zone_for(request))
        try:
            return self.get_response(request)
        finally:
            # The zone is the request's alone: whatever runs next in this thread starts from TIME_ZONE.
            timezone.deactivate()
