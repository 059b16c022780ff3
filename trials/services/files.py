"""Files on the attempt page: an upload into the workspace and a download of a file or folder, size-limited.

Both go through the workstation, which writes and reads inside the attempt's sandbox as its user
(workstation/files.py); here the request is checked: whose attempt, whether it runs, the path and the size.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile

from rebench_site import roles
from rebench_site.errors import ServiceError
from trials.models import Attempt
from trials.services._shared import _require_owner, _require_running
from workstation.backends import BackendError

PATH_MAX_CHARS = 1024
# No control characters and no backslashes: a name is what `ls` would show, never an escape.
_BAD_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\\]")


def workspace_path(path: str, *, field: str = "path", allow_empty: bool = True) -> str:
    """`path` relative to the workspace, normalised; ServiceError naming `field` for an absolute path, `..`,
    control characters or one too long."""
    text = (path or "").strip()
    if len(text) > PATH_MAX_CHARS or _BAD_CHARACTERS.search(text):
        raise ServiceError(f"A path is at most {PATH_MAX_CHARS} plain characters.", field=field)
    if text.startswith("/"):
        raise ServiceError("The path is relative to the workspace (/home/agent): no leading /.", field=field)
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ServiceError("The path may not climb out of the workspace (..).", field=field)
    if not parts and not allow_empty:
        raise ServiceError("Name a file.", field=field)
    return "/".join(parts)


def _backend_call(attempt: Attempt, method: str, *args: object, **kwargs: object) -> object:
    from trials import selectors

    backend = selectors.workstation_backend(attempt.workstation)
    request = selectors.attempt_sandbox_request(attempt)

    async def call() -> object:
        try:
            return await getattr(backend, method)(request, *args, **kwargs)
        finally:
            await backend.disconnect()

    try:
        return async_to_sync(call)()
    except BackendError as exc:
        raise ServiceError(f"The workstation refused: {exc}", field="path") from None


def attempt_file_upload(*, attempt: Attempt, by: User, upload: UploadedFile, folder: str = "") -> str:
    """Write an uploaded file into the workspace of `by`'s running, unpaused attempt; its path there."""
    _require_owner(attempt, by)
    attempt = Attempt.objects.prefetch_related("pauses").select_related("workstation").get(pk=attempt.pk)
    _require_running(attempt)
    if attempt.is_preparing or attempt.open_pause() is not None:
        raise ServiceError("The attempt is paused: files go in when it runs again.", field="attempt")
    limit = settings.ATTEMPT_UPLOAD_MAX_MB * 1024 * 1024
    if upload.size is None or upload.size > limit:
        raise ServiceError(f"A file may be at most {settings.ATTEMPT_UPLOAD_MAX_MB} MB.", field="file")
    name = workspace_path(upload.name or "", field="file", allow_empty=False).rsplit("/", 1)[-1]
    path = "/".join(part for part in (workspace_path(folder), name) if part)
    data = b"".join(upload.chunks())
    _backend_call(attempt, "workspace_upload", path, data)
    return path


def attempt_file_download(*, attempt: Attempt, by: User, path: str) -> tuple[Path, str]:
    """A workspace file (kind "file") or folder as a tar.gz ("folder") in a temporary file the caller removes:
    the attempt's expert while it runs; admins any time."""
    if not roles.is_admin(by):
        _require_owner(attempt, by)
        _require_running(attempt)
    clean = workspace_path(path)
    handle = tempfile.NamedTemporaryFile(prefix="rebench-download-", delete=False)  # noqa: SIM115 - the response streams it
    handle.close()
    dest = Path(handle.name)
    try:
        kind = _backend_call(
            attempt, "workspace_download", clean, dest, max_bytes=settings.ATTEMPT_DOWNLOAD_MAX_MB * 1024 * 1024
        )
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest, str(kind)
