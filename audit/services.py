"""Writing the audit log."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from audit.models import AuditEvent


class _Encoder(DjangoJSONEncoder):
    """Django's ISO times, decimals and UUIDs; anything else as its str()."""

    def default(self, o: Any) -> Any:
        try:
            return super().default(o)
        except TypeError:
            return str(o)


def _plain(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """JSON-safe copies (times and ids as strings), so the record reads the same forever.

    (A `default=` beside `cls=` would replace the encoder's own default: times came out as str().)"""
    plain: dict[str, Any] = json.loads(json.dumps(values or {}, cls=_Encoder))
    return plain


def audit_record(
    *,
    actor: User | None,
    action: str,
    subject: str,
    attempt_id: int | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    note: str = "",
    at: datetime | None = None,
) -> AuditEvent:
    """One entry. Call it inside the transaction that makes the change."""
    return AuditEvent.objects.create(
        at=at or timezone.now(),
        actor=actor if actor is not None and actor.pk is not None else None,
        actor_name=getattr(actor, "username", "") if actor is not None else "",
        action=action,
        subject=subject[:200],
        attempt_id=attempt_id,
        before=_plain(before),
        after=_plain(after),
        note=note[:2000],
    )
