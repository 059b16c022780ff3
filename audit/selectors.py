"""Reading the audit log."""

from __future__ import annotations

from django.db.models import QuerySet

from audit.models import AuditEvent


def audit_events(*, action: str = "", attempt_id: int | None = None) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if action:
        events = events.filter(action=action)
    if attempt_id is not None:
        events = events.filter(attempt_id=attempt_id)
    return events


def audit_actions() -> list[str]:
    return sorted(AuditEvent.objects.values_list("action", flat=True).distinct())
