"""The booking request the reservations API tests send (booking, refused bookings, cancelling), and when to."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from trials.models import Workstation


def tomorrow_at(hour: int) -> datetime:
    return (timezone.now() + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)


def booking(workstation: Workstation, /, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "environment": "ai_rd_triton_cumsum",
        "workstation": workstation.pk,
        "starts_at": tomorrow_at(9).isoformat(),
    }
    body.update(overrides)
    return body
