"""The running attempt the attempts API tests (test_attempts_api_reading, _pauses, _submit_and_end, _notes) act on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests import factories


@pytest.fixture
def attempt(expert, env_cumsum, workstation):
    """The expert's running attempt, started an hour ago in a slot that opened just before."""
    started = timezone.now() - timedelta(hours=1)
    reservation = factories.ReservationFactory.create(
        expert=expert, workstation=workstation, starts_at=started - timedelta(minutes=5)
    )
    return factories.AttemptFactory.create(reservation=reservation, started_at=started)
