"""A workstation that stops answering mid-attempt: the pause it costs nobody, and its end when the host is back.

The server hears a workstation through its heartbeat (a task on the workstation's own queue, every
WORKSTATION_PING_SECONDS). Silent for WORKSTATION_OFFLINE_AFTER, its running attempts get a
`technical` pause made by the system (no `created_by`), from the moment the grace ran out; the
sandbox there stops at the same moment by itself, because the server's word to it carries a lease
of the same length that only this sweep (and an open terminal) renews. When the heartbeat is back,
the system's pause ends and the sandbox hears the new deadline: the shell, its holder and the
workspace were never touched, so the expert finds them as they were.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from trials.models import Attempt, Pause, Workstation
from trials.services._shared import _audit, _locked_attempt
from trials.services.sync import _schedule_deadline, attempt_sandbox_sync

log = logging.getLogger(__name__)

OUTAGE_NOTE = "Automatic: {workstation} stopped answering (last heard {heard}); the clock waits for it."


def workstation_silent_since(workstation: Workstation, now: datetime) -> datetime | None:
    """When the workstation was last heard, if it has been silent past WORKSTATION_OFFLINE_AFTER; else None."""
    heard = workstation.last_heartbeat_at
    if heard is None or now - heard <= settings.WORKSTATION_OFFLINE_AFTER:
        return None
    return heard


def is_outage_pause(pause: Pause | None) -> bool:
    """A pause this module made (the system's technical pause), not an admin's or an expert's."""
    return pause is not None and pause.reason == Pause.Reason.TECHNICAL and pause.created_by_id is None


def workstations_watch(*, now: datetime | None = None) -> dict[str, int]:
    """The beat's sweep: pause the running attempts of silent workstations, resume those whose host is
    back, and renew the sandbox lease of every attempt on a workstation that answers."""
    now = now or timezone.now()
    done = {"paused": 0, "resumed": 0, "renewed": 0}
    running = (
        Attempt.objects.filter(status=Attempt.Status.RUNNING, source=Attempt.Source.LOCAL, workstation__isnull=False)
        .select_related("workstation")
        .prefetch_related("pauses")
    )
    for attempt in running:
        workstation = attempt.workstation
        assert workstation is not None  # filtered above
        silent_since = workstation_silent_since(workstation, now)
        # Read unlocked first: a sweep every few seconds locks only the attempts it may change (the
        # services check again under the lock).
        open_pause = attempt.open_pause()
        if silent_since is not None:
            if open_pause is None:
                done["paused"] += attempt_outage_pause(attempt=attempt, heard=silent_since, now=now)
            continue
        if is_outage_pause(open_pause) and attempt_outage_resume(attempt=attempt, now=now):
            done["resumed"] += 1
        else:
            attempt_sandbox_sync(attempt, tell_terminals=False)  # the lease's renewal: the workstation answers
            done["renewed"] += 1
    return done


@transaction.atomic
def attempt_outage_pause(*, attempt: Attempt, heard: datetime, now: datetime) -> bool:
    """Stop the clock of a running attempt whose workstation was last heard at `heard`, from when the
    grace ran out (the sandbox's lease ends then too). Nothing if its clock hasn't started (nothing
    counts yet), if it is paused already, or if its deadline came first (the deadline sweep ends it)."""
    attempt = _locked_attempt(attempt)
    if not attempt.is_running or attempt.clock_started_at is None or attempt.open_pause() is not None:
        return False
    starts = heard + settings.WORKSTATION_OFFLINE_AFTER
    last_end = max((p.ended_at for p in attempt.pauses.all() if p.ended_at is not None), default=None)
    starts = max(d for d in (starts, attempt.clock_started_at, last_end) if d is not None)
    deadline = attempt.deadline()
    if starts > now or (deadline is not None and starts >= deadline):
        return False
    workstation = attempt.workstation
    note = OUTAGE_NOTE.format(
        workstation=workstation.name if workstation else "its workstation",
        heard=f"{timezone.localtime(heard):%Y-%m-%d %H:%M:%S %Z}",
    )
    Pause.objects.create(attempt=attempt, reason=Pause.Reason.TECHNICAL, started_at=starts, note=note)
    _audit(None, "attempt.outage_pause", attempt, {"deadline": deadline}, {"paused_from": starts}, note, now)
    log.warning("attempt %s: %s", attempt.pk, note)
    _schedule_deadline(attempt)
    return True


@transaction.atomic
def attempt_outage_resume(*, attempt: Attempt, now: datetime) -> bool:
    """End the system's outage pause of an attempt whose workstation answers again; the sandbox hears
    the new deadline and thaws. An admin's or an expert's pause is theirs to end."""
    attempt = _locked_attempt(attempt)
    pause = attempt.open_pause()
    if not attempt.is_running or not is_outage_pause(pause):
        return False
    assert pause is not None  # is_outage_pause
    pause.ended_at = max(now, pause.started_at + timedelta(microseconds=1))
    pause.save(update_fields=["ended_at"])
    _audit(None, "attempt.outage_resume", attempt, {"paused": pause.reason}, {"deadline": attempt.deadline()}, "", now)
    _schedule_deadline(attempt)
    return True
