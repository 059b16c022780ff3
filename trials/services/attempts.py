"""The attempt on its server-owned clock: the start, pauses, notes, the end by its expert or an admin, exclusion."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from environments import packages
from environments.services import environment_configuration_for
from rebench_site import roles
from rebench_site.errors import NotAllowed, ServiceError
from trials.grading import grading
from trials.models import Attempt, Note, Pause, Reservation
from trials.services._shared import (
    _audit,
    _locked_attempt,
    _require_clock_started,
    _require_owner,
    _require_running,
)
from trials.services.deadlines import _end, _end_if_overdue, ends_overdue_attempt_first
from trials.services.sync import _schedule_deadline

NOTE_MAX_CHARS = 10_000


@transaction.atomic
def attempt_start(*, reservation: Reservation, by: User, now: datetime | None = None) -> Attempt:
    now = now or timezone.now()
    reservation = Reservation.objects.select_for_update().select_related("environment").get(pk=reservation.pk)
    if reservation.expert_id != by.pk:
        raise NotAllowed("Only the expert who booked the slot starts its attempt.")
    if reservation.cancelled_at:
        raise ServiceError("That reservation was cancelled.", field="reservation")
    existing = Attempt.objects.filter(reservation=reservation).first()
    if existing:
        return existing
    if now < reservation.starts_at - settings.ATTEMPT_EARLY_START:
        raise ServiceError(
            f"The slot opens at {timezone.localtime(reservation.starts_at):%Y-%m-%d %H:%M %Z}.", field="reservation"
        )
    if now >= reservation.ends_at:
        raise ServiceError("The slot is over.", field="reservation")
    # Provenance, fixed now: the scale the workstations run it at, and the scorer as it is at the start.
    package = packages.find(reservation.environment.slug)
    attempt = Attempt.objects.create(
        participant_kind=Attempt.ParticipantKind.HUMAN,
        user_id=reservation.expert_id,
        reservation=reservation,
        environment=reservation.environment,
        workstation_id=reservation.workstation_id,
        time_limit=reservation.environment.time_limit,
        hard_stop_at=reservation.ends_at,
        started_at=now,
        configuration=environment_configuration_for(environment=reservation.environment),
        package_version=package.version if package else "",
        scorer_digest=package.scorer_digest() if package else "",
    )
    # Preparing: the clock starts once the environment is ready (attempt_clock_start); until then only
    # the slot's hard stop holds, and the deadline task waits for it.
    _schedule_deadline(attempt)
    grading().attempt_started(attempt)  # the starting solution is copied on the workstation, after commit
    return attempt


def attempt_workspace_mark_ready(*, attempt_id: int, now: datetime | None = None) -> bool:
    """The workstation finished setting the workspace up: the page moves on to scoring the starting solution.

    The first time counts (a re-run of the set-up finds it prepared and changes nothing); False if it was already.
    """
    return bool(
        Attempt.objects.filter(pk=attempt_id, workspace_ready_at__isnull=True).update(
            workspace_ready_at=now or timezone.now()
        )
    )


@transaction.atomic
def attempt_clock_start(*, attempt_id: int, now: datetime | None = None) -> bool:
    """The environment is ready (its starting solution scored, or it has none to score): the clock starts now.

    From here elapsed time, the deadline and the time limit count. Once only: True if this call started
    it; an ended attempt (its slot ran out while it was prepared) never starts.
    """
    now = now or timezone.now()
    attempt = Attempt.objects.select_for_update().filter(pk=attempt_id).first()
    if attempt is None or not attempt.is_preparing:
        return False
    attempt.clock_started_at = now
    attempt.preparation_error, attempt.preparation_failed_at = "", None
    attempt.save(update_fields=["clock_started_at", "preparation_error", "preparation_failed_at"])
    # The deadline task for the clock's deadline; the workstation hears it and thaws the sandbox.
    _schedule_deadline(attempt)
    return True


@transaction.atomic
def attempt_preparation_fail(*, attempt_id: int, reason: str, now: datetime | None = None) -> bool:
    """Preparing the environment failed: say why on the page. The clock stays stopped, so it costs no time.

    True if recorded; an attempt whose clock has started (or that has ended) keeps its state.
    """
    attempt = Attempt.objects.select_for_update().filter(pk=attempt_id).first()
    if attempt is None or not attempt.is_preparing:
        return False
    attempt.preparation_error = (reason.strip() or "Preparing the environment failed.")[:2000]
    attempt.preparation_failed_at = now or timezone.now()
    attempt.save(update_fields=["preparation_error", "preparation_failed_at"])
    return True


@ends_overdue_attempt_first
@transaction.atomic
def attempt_preparation_retry(*, attempt: Attempt, by: User, now: datetime | None = None) -> Attempt:
    """The expert or an admin prepares a failed environment again; the clock starts when that succeeds.

    Only after a failure: a preparation still under way is never run twice over the same workspace.
    """
    now = now or timezone.now()
    attempt = _locked_attempt(attempt)
    if not roles.is_admin(by):
        _require_owner(attempt, by)
    _require_running(attempt, now)
    if not attempt.is_preparing:
        raise ServiceError("The environment is ready: the clock has started.", field="attempt")
    if not attempt.preparation_error:
        raise ServiceError("The environment is still being prepared; retry only if that fails.", field="attempt")
    before = {"preparation_error": attempt.preparation_error}
    attempt.preparation_error, attempt.preparation_failed_at = "", None
    attempt.save(update_fields=["preparation_error", "preparation_failed_at"])
    _audit(by, "attempt.preparation_retry", attempt, before, {"preparation_error": ""}, "", now)
    grading().attempt_started(attempt)  # prepared again on the workstation, after commit
    return attempt


EXPERT_PAUSE_REASONS = {Pause.Reason.BREAK}


ADMIN_PAUSE_REASONS = {Pause.Reason.BREAK, Pause.Reason.ADMIN, Pause.Reason.TECHNICAL}


@ends_overdue_attempt_first
@transaction.atomic
def attempt_pause(
    *, attempt: Attempt, by: User | None, reason: str, note: str = "", now: datetime | None = None
) -> Pause:
    """Stop the clock. Experts pause for a break; admins for any reason; `scoring` is the system's (by=None)."""
    now = now or timezone.now()
    attempt = _locked_attempt(attempt)
    if reason not in Pause.Reason.values:
        raise ServiceError(f"Unknown pause reason {reason!r}.", field="reason")
    if by is None:
        if reason != Pause.Reason.SCORING:
            raise ServiceError("Only scoring pauses are made by the system.", field="reason")
    elif roles.is_admin(by) and attempt.user_id != by.pk:
        if reason not in ADMIN_PAUSE_REASONS:
            raise ServiceError(f"Admins pause with one of: {', '.join(sorted(ADMIN_PAUSE_REASONS))}.", field="reason")
    else:
        _require_owner(attempt, by)
        if reason not in EXPERT_PAUSE_REASONS:
            raise ServiceError("Experts pause for a break; other pauses are an admin's.", field="reason")
    _require_running(attempt, now)
    _require_clock_started(attempt)  # nothing to stop: no time counts while the environment is prepared
    if attempt.pauses.filter(ended_at__isnull=True).exists():
        raise ServiceError("The attempt is already paused.", field="attempt")
    before = {"deadline": attempt.deadline()}
    pause = Pause.objects.create(attempt=attempt, reason=reason, started_at=now, note=note[:500], created_by=by)
    if _admin_of_another(by, attempt):
        _audit(by, "attempt.pause", attempt, before, {"paused": reason}, note, now)
    _schedule_deadline(attempt)  # a paused attempt still ends at its slot's hard stop
    return pause


@ends_overdue_attempt_first
@transaction.atomic
def attempt_resume(*, attempt: Attempt, by: User | None, now: datetime | None = None) -> Attempt:
    now = now or timezone.now()
    attempt = _locked_attempt(attempt)
    if by is not None and not (roles.is_admin(by) and attempt.user_id != by.pk):
        _require_owner(attempt, by)
    _require_running(attempt, now)
    pause = attempt.pauses.filter(ended_at__isnull=True).first()
    if pause is None:
        raise ServiceError("The attempt is not paused.", field="attempt")
    if by is not None and not roles.is_admin(by) and pause.reason != Pause.Reason.BREAK:
        raise ServiceError(
            f"A {pause.reason} pause is ended by {'the scorer' if pause.reason == 'scoring' else 'an admin'}."
        )
    if by is None and pause.reason != Pause.Reason.SCORING:
        raise ServiceError("The system only ends scoring pauses.")
    pause.ended_at = max(now, pause.started_at + timedelta(microseconds=1))
    pause.save(update_fields=["ended_at"])
    if _admin_of_another(by, attempt):
        _audit(by, "attempt.resume", attempt, {"paused": pause.reason}, {"deadline": _deadline(attempt)}, "", now)
    _schedule_deadline(attempt)
    return attempt


@ends_overdue_attempt_first
@transaction.atomic
def attempt_add_pause(
    *,
    attempt: Attempt,
    by: User,
    started_at: datetime,
    ended_at: datetime,
    reason: str = Pause.Reason.TECHNICAL,
    note: str = "",
    now: datetime | None = None,
) -> Pause:
    """An admin gives time back after the fact (an outage, a broken workstation)."""
    now = now or timezone.now()
    if not roles.is_admin(by):
        raise NotAllowed("Only admins add pauses after the fact.")
    attempt = _locked_attempt(attempt)
    if reason not in (Pause.Reason.TECHNICAL, Pause.Reason.ADMIN):
        raise ServiceError("Pauses after the fact are technical or admin pauses.", field="reason")
    _require_running(attempt, now)
    _require_clock_started(attempt)
    for name, value in (("started_at", started_at), ("ended_at", ended_at)):
        if timezone.is_naive(value):
            raise ServiceError("Give the time zone too.", field=name)
    if ended_at <= started_at:
        raise ServiceError("The pause must end after it starts.", field="ended_at")
    clock_start = attempt.clock_start
    if clock_start is not None and started_at < clock_start:
        raise ServiceError("The pause starts before the attempt's clock did.", field="started_at")
    if ended_at > now:
        raise ServiceError("A pause after the fact can't end in the future.", field="ended_at")
    before = {"deadline": attempt.deadline()}
    pause = Pause.objects.create(
        attempt=attempt, reason=reason, started_at=started_at, ended_at=ended_at, note=note[:500], created_by=by
    )
    after = {"deadline": _deadline(attempt), "pause": [started_at, ended_at], "reason": reason}
    _audit(by, "attempt.add_time", attempt, before, after, note, now)
    _schedule_deadline(attempt)
    return pause


@ends_overdue_attempt_first
@transaction.atomic
def attempt_add_note(*, attempt: Attempt, by: User, body: str, now: datetime | None = None) -> Note:
    now = now or timezone.now()
    attempt = _locked_attempt(attempt)
    _require_owner(attempt, by)
    _require_running(attempt, now)
    body = body.strip()
    if not body:
        raise ServiceError("A note needs some text.", field="body")
    if len(body) > NOTE_MAX_CHARS:
        raise ServiceError(f"A note holds at most {NOTE_MAX_CHARS} characters.", field="body")
    elapsed = Attempt.objects.prefetch_related("pauses").get(pk=attempt.pk).elapsed(now)
    return Note.objects.create(attempt=attempt, author=by, body=body, elapsed_seconds=elapsed.total_seconds())


@transaction.atomic
def attempt_submit(*, attempt: Attempt, by: User, now: datetime | None = None) -> Attempt:
    """The participant is done. Submitting an ended attempt changes nothing; one past its deadline ends there."""
    now = now or timezone.now()
    attempt = _locked_attempt(attempt)
    _require_owner(attempt, by)
    if attempt.status != Attempt.Status.RUNNING or _end_if_overdue(attempt, now):
        return attempt
    return _end(attempt, reason=Attempt.EndReason.SUBMITTED, at=now)


@transaction.atomic
def attempt_end_by_admin(*, attempt: Attempt, by: User, now: datetime | None = None) -> Attempt:
    if not roles.is_admin(by):
        raise NotAllowed("Only admins end someone's attempt.")
    now = now or timezone.now()
    attempt = _locked_attempt(attempt)
    if attempt.status != Attempt.Status.RUNNING or _end_if_overdue(attempt, now):
        return attempt
    before = {"status": attempt.status, "deadline": attempt.deadline()}
    attempt = _end(attempt, reason=Attempt.EndReason.ADMIN, at=now)
    _audit(by, "attempt.end", attempt, before, {"status": attempt.status, "ended_at": attempt.ended_at}, "", now)
    return attempt


@transaction.atomic
def attempt_exclude(*, attempt: Attempt, by: User, reason: str, note: str = "", now: datetime | None = None) -> Attempt:
    """An admin leaves a run out of every leaderboard (a technical failure, a rule breach, a test
    run), saying why; it stays listed, with the reason, as excluded. Excluding it again updates why."""
    if not roles.is_admin(by):
        raise NotAllowed("Only admins exclude runs from leaderboards.")
    if reason not in Attempt.Exclusion.values:
        raise ServiceError(f"Give a reason: one of {', '.join(Attempt.Exclusion.values)}.", field="reason")
    note = note.strip()
    if len(note) > 500:
        raise ServiceError("The note holds at most 500 characters.", field="note")
    if reason == Attempt.Exclusion.OTHER and not note:
        raise ServiceError("Say what the other reason is.", field="note")
    attempt = _locked_attempt(attempt)
    before = {"excluded": attempt.excluded_reason}
    attempt.excluded_reason, attempt.excluded_note = reason, note
    attempt.excluded_by, attempt.excluded_at = by, now or timezone.now()
    attempt.save(update_fields=["excluded_reason", "excluded_note", "excluded_by", "excluded_at"])
    _audit(by, "attempt.exclude", attempt, before, {"excluded": reason}, note, attempt.excluded_at)
    _leaderboards_changed()
    return attempt


@transaction.atomic
def attempt_include(*, attempt: Attempt, by: User) -> Attempt:
    """Undo an exclusion: the run counts again."""
    if not roles.is_admin(by):
        raise NotAllowed("Only admins change what counts on leaderboards.")
    attempt = _locked_attempt(attempt)
    if not attempt.excluded_reason:
        raise ServiceError("That run is not excluded.", field="attempt")
    before = {"excluded": attempt.excluded_reason, "note": attempt.excluded_note}
    attempt.excluded_reason, attempt.excluded_note, attempt.excluded_by, attempt.excluded_at = "", "", None, None
    attempt.save(update_fields=["excluded_reason", "excluded_note", "excluded_by", "excluded_at"])
    _audit(by, "attempt.include", attempt, before, {"excluded": ""}, "", None)
    _leaderboards_changed()
    return attempt


def _admin_of_another(by: User | None, attempt: Attempt) -> bool:
    return by is not None and roles.is_admin(by) and attempt.user_id != by.pk


def _deadline(attempt: Attempt) -> datetime | None:
    """The deadline read afresh, with the pauses as they are now (the locked attempt's are as they were)."""
    return Attempt.objects.prefetch_related("pauses").get(pk=attempt.pk).deadline()


def _leaderboards_changed() -> None:
    grading().attempts_changed()
