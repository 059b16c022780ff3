"""Terminals: the token for the shell's `task` command, who attaches to which tab, an admin's notice,
and the end of an ended attempt's terminals on its workstation."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from rebench_site import roles
from rebench_site.errors import NotAllowed, ServiceError
from trials.models import Attempt, AttemptToken, TerminalSession, Workstation
from trials.services._shared import _require_running
from trials.services.deadlines import ends_overdue_attempt_first
from trials.services.sync import _send_to_terminals
from workstation import holder


@transaction.atomic
def attempt_token_issue(*, attempt: Attempt) -> str:
    """A new secret for the shell's `task` command; only its hash is kept, so it is shown once."""
    token = secrets.token_urlsafe(32)
    AttemptToken.objects.create(attempt=attempt, key_hash=AttemptToken.hash_of(token))
    return token


@dataclass(frozen=True)
class TerminalAccess:
    session: TerminalSession
    attempt: Attempt
    workstation: Workstation | None
    readonly: bool


@ends_overdue_attempt_first
@transaction.atomic
def terminal_session_open(*, attempt_id: int, number: int, user: User, now: datetime | None = None) -> TerminalAccess:
    """Who may attach to terminal `number`: the attempt's expert types, admins watch read-only."""
    now = now or timezone.now()
    attempt = Attempt.objects.select_related("workstation").filter(pk=attempt_id).first()
    if attempt is None:
        raise NotAllowed("No such attempt.")
    is_owner = attempt.user_id == user.pk
    if not is_owner and not roles.is_admin(user):
        raise NotAllowed("That attempt is not yours.")
    if not 1 <= number <= settings.TERMINAL_MAX_TABS:
        raise ServiceError(f"Terminals are numbered 1 to {settings.TERMINAL_MAX_TABS}.", field="number")
    _require_running(attempt, now)
    from trials.recording import recording_name

    backend = attempt.workstation.backend if attempt.workstation else Workstation.Backend.LOCAL
    session, _ = TerminalSession.objects.get_or_create(
        attempt=attempt,
        number=number,
        defaults={
            "backend": backend,
            "tmux_session": holder.session_name(attempt.pk, number),
            "recording_name": recording_name(attempt.pk, number),
        },
    )
    if is_owner:
        TerminalSession.objects.filter(pk=session.pk).update(last_connected_at=now)
    return TerminalAccess(session=session, attempt=attempt, workstation=attempt.workstation, readonly=not is_owner)


def terminals_finish(*, attempt_id: int) -> int:
    """End every terminal and the sandbox's processes of an ended attempt; merge its recordings into storage.

    Idempotent. Raises BackendError while the workstation can't be reached (the task retries).
    Returns the number of recordings finalised.
    """
    from asgiref.sync import async_to_sync

    from trials import recording, selectors

    attempt = Attempt.objects.select_related("workstation").filter(pk=attempt_id).first()
    if attempt is None or attempt.status == Attempt.Status.RUNNING:
        return 0
    sessions = list(TerminalSession.objects.filter(attempt_id=attempt_id))
    backend = selectors.workstation_backend(attempt.workstation)
    spools = [(s.number, recording.spool_dir(s.recording_name) / recording.OUTPUT) for s in sessions]
    staging = Path(tempfile.mkdtemp(prefix="rebench-ssh-recordings-"))
    ssh_numbers: list[int] = []

    async def finish() -> None:
        try:
            if await backend.end_attempt(attempt_id):
                await asyncio.sleep(RECORDER_EXIT_SECONDS)
            await backend.collect_recordings(attempt_id, spools)
            ssh_numbers.extend(await backend.collect_ssh_recordings(attempt_id, lambda n: staging / f"{n}.out"))
        finally:
            await backend.disconnect()

    try:
        async_to_sync(finish)()
        sessions += _ssh_sessions_record(attempt, staging, ssh_numbers)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    finalised = 0
    for session in sessions:
        if recording.finalize(session.recording_name):
            finalised += 1
    return finalised


# An SSH session's terminal in the replay: session n is terminal SSH_SESSION_BASE + n, past every browser tab.
SSH_SESSION_BASE = 1000


def _ssh_sessions_record(attempt: Attempt, staging: Path, numbers: list[int]) -> list[TerminalSession]:
    """The attempt's SSH sessions as terminals of its replay: a TerminalSession each, its output in the spool."""
    from trials import recording

    made = []
    for n in numbers:
        number = SSH_SESSION_BASE + n
        name = recording.recording_name(attempt.pk, number)
        session, created = TerminalSession.objects.get_or_create(
            attempt=attempt,
            number=number,
            defaults={
                "backend": attempt.workstation.backend if attempt.workstation else Workstation.Backend.LOCAL,
                "tmux_session": f"attempt-{attempt.pk}-ssh-{n}",
                "recording_name": name,
                "ended_at": attempt.ended_at or timezone.now(),
                "end_reason": f"SSH session {n}",
            },
        )
        if not created and recording.recording_exists(name):
            continue  # finalised by an earlier run of this task
        directory = recording.prepare_spool(name, width=80, height=24, title=f"SSH session {n}")
        shutil.copyfile(staging / f"{n}.out", directory / recording.OUTPUT)  # whole: a retried task writes it again
        made.append(session)
    return made


# A holder told to stop records what its shell printed last before it exits: a moment after the signal.
RECORDER_EXIT_SECONDS = 0.5


NOTICE_MAX_CHARS = 1000


@transaction.atomic
def terminals_send_notice(*, attempt: Attempt, by: User, message: str) -> None:
    """An admin's message, shown in every open terminal of the attempt (e.g. "workstation reboots in 5 min")."""
    if not roles.is_admin(by):
        raise NotAllowed("Only admins message an attempt's terminals.")
    message = message.strip()
    if not message:
        raise ServiceError("A message needs some text.", field="message")
    if len(message) > NOTICE_MAX_CHARS:
        raise ServiceError(f"A message holds at most {NOTICE_MAX_CHARS} characters.", field="message")
    text = f"Message from {by.get_username()}: {message}"
    transaction.on_commit(lambda: _send_to_terminals(attempt.pk, {"type": "admin.message", "message": text}))
