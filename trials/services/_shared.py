"""What the trials services share: the attempt locked with its pauses, the checks every attempt write
makes, and the audit row of an attempt write."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.contrib.auth.models import User

from audit.services import audit_record
from rebench_site.errors import NotAllowed, ServiceError
from trials.models import Attempt


def _locked_attempt(attempt: Attempt) -> Attempt:
    return Attempt.objects.select_for_update().prefetch_related("pauses").get(pk=attempt.pk)


def _locked_with_pauses(attempt_id: int) -> Attempt | None:
    return Attempt.objects.select_for_update().prefetch_related("pauses").filter(pk=attempt_id).first()


def _require_owner(attempt: Attempt, user: User) -> None:
    if attempt.user_id != user.pk:
        raise NotAllowed("That attempt is not yours.")


def _require_running(attempt: Attempt, now: datetime | None = None) -> None:
    if attempt.status != Attempt.Status.RUNNING:
        raise ServiceError(f"The attempt has ended ({attempt.get_end_reason_display()}).", field="attempt")
    if now is not None and _passed_deadline(attempt, now) is not None:
        # Its time ran out between the check before this write and the lock: refuse all the same
        # (the next request, the deadline task or the sweep ends it).
        raise ServiceError("The attempt's time is up.", field="attempt")


def _require_clock_started(attempt: Attempt) -> None:
    if attempt.is_preparing:
        raise ServiceError(
            "The clock hasn't started: the environment is still being prepared, and nothing counts until it is.",
            field="attempt",
        )


def _passed_deadline(attempt: Attempt, now: datetime) -> datetime | None:
    """The deadline (or the slot's hard stop) of a running attempt on this site's clock, if it is at or before `now`."""
    if not attempt.is_running or not attempt.is_local:
        return None
    deadline = attempt.deadline()
    return deadline if deadline is not None and deadline <= now else None


def _audit(
    by: User | None,
    action: str,
    attempt: Attempt,
    before: Mapping[str, object],
    after: Mapping[str, object],
    note: str,
    at: datetime | None,
) -> None:
    audit_record(
        actor=by,
        action=action,
        subject=f"attempt {attempt.pk}",
        attempt_id=attempt.pk,
        before=before,
        after=after,
        note=note,
        at=at,
    )
