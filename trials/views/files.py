"""Files on the attempt page: upload into the workspace, download a file or a folder (tar.gz)."""

from __future__ import annotations

import os
from pathlib import Path

from django.contrib import messages
from django.http import FileResponse, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from rebench_site.errors import ServiceError
from rebench_site.roles import ADMIN, EXPERT, AuthenticatedHttpRequest, role_required
from trials import services
from trials.views._shared import _visible_attempt


def _refused(request: AuthenticatedHttpRequest, pk: int, exc: ServiceError) -> HttpResponse:
    context = {"attempt_id": pk, "field": exc.field, "message": exc.message}
    return render(request, "trials/attempt_files_refused.html", context, status=400)


@require_POST
@role_required(EXPERT)
def attempt_files_upload(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    attempt = _visible_attempt(request, pk)
    upload = request.FILES.get("file")
    if upload is None:
        return _refused(request, pk, ServiceError("Choose a file to upload.", field="file"))
    try:
        path = services.attempt_file_upload(
            attempt=attempt, by=request.user, upload=upload, folder=request.POST.get("path", "")
        )
    except ServiceError as exc:
        return _refused(request, pk, exc)
    messages.success(request, f"Uploaded to /home/agent/{path}.")
    return redirect("trials:attempt", pk=pk)


class _RemovedAfter(FileResponse):
    """A download's temporary file, removed once it has been sent."""

    def __init__(self, path: Path, **kwargs: object) -> None:
        self._path = path
        super().__init__(path.open("rb"), **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        super().close()
        self._path.unlink(missing_ok=True)


@require_GET
@role_required(EXPERT, ADMIN)
def attempt_files_download(request: AuthenticatedHttpRequest, pk: int) -> HttpResponseBase:
    attempt = _visible_attempt(request, pk)
    path = request.GET.get("path", "")
    try:
        found, kind = services.attempt_file_download(attempt=attempt, by=request.user, path=path)
    except ServiceError as exc:
        return _refused(request, pk, exc)
    base = os.path.basename(path.rstrip("/")) or f"attempt-{pk}-workspace"
    name = base if kind == "file" else f"{base}.tar.gz"
    return _RemovedAfter(found, as_attachment=True, filename=name)
