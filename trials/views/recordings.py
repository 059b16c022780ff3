"""Terminal recordings, for admins: an attempt's replay page and the .cast file of each terminal."""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from rebench_site.roles import ADMIN, AuthenticatedHttpRequest, role_required
from trials.models import TerminalSession
from trials.recording import activity_timeline, cast_lines, recording_exists, storage
from trials.views._shared import _visible_attempt


def _terminal_number(request: HttpRequest) -> int | None:
    raw = request.GET.get("terminal", "")
    # A tab's number: a few ASCII digits (str.isdigit takes "²"; a 30-digit one overflows the column).
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 4 else None


@require_GET
@role_required(ADMIN)
def terminal_replay(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
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
def terminal_cast(request: AuthenticatedHttpRequest, pk: int) -> HttpResponseBase:
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
