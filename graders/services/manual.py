"""Scores entered by hand: a Task Standard family whose `score` returns None asks a person to score the attempt.

The final run's entry says so (details `manual_scoring`, with the submission); an admin enters the
score with a note, and it becomes the attempt's last entry, so its final score follows. The audit
log keeps who entered what, and why.
"""

from __future__ import annotations

import math
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from graders.models import ScoreLogEntry
from graders.services.numbers import attempt_score_update
from rebench_site import roles
from rebench_site.errors import NotAllowed, ServiceError
from trials.models import Attempt

NOTE_MAX_CHARS = 500


@transaction.atomic
def attempt_score_enter(
    *, attempt: Attempt, by: User, score: float, note: str, now: datetime | None = None
) -> ScoreLogEntry:
    """An admin's score for an ended attempt whose final run asked for one; once per attempt."""
    if not roles.is_admin(by):
        raise NotAllowed("Only admins enter scores.")
    now = now or timezone.now()
    attempt = Attempt.objects.select_for_update().select_related("environment").get(pk=attempt.pk)
    note = note.strip()
    if not note:
        raise ServiceError("Say how the score was reached: the note is kept with it.", field="note")
    if len(note) > NOTE_MAX_CHARS:
        raise ServiceError(f"A note is at most {NOTE_MAX_CHARS} characters.", field="note")
    if not math.isfinite(score):
        raise ServiceError("A score entered by hand is a finite number.", field="score")
    from graders.selectors import entries_awaiting_manual_score  # here: the selectors import this package

    asking = entries_awaiting_manual_score().filter(attempt=attempt).first()
    if asking is None:
        if ScoreLogEntry.objects.filter(attempt=attempt, details__manual=True).exists():
            raise ServiceError("This attempt has been scored by hand already.", field="score")
        raise ServiceError("This attempt's scoring didn't ask for a score by hand.", field="score")
    entry = ScoreLogEntry.objects.create(
        attempt=attempt,
        job=None,
        scored_at=now,
        elapsed_seconds=asking.elapsed_seconds,
        score=score,
        message=f"Scored by hand by {by.username}: {note}",
        details={"manual": True, "entered_by": by.username, "note": note, "asked_by_entry": asking.pk},
    )
    audit_record(
        actor=by,
        action="score.manual",
        subject=f"attempt {attempt.pk} ({attempt.environment.slug})",
        attempt_id=attempt.pk,
        after={"score": score},
        note=note,
        at=now,
    )
    attempt_score_update(attempt=attempt, is_final=True, now=now)
    return entry
