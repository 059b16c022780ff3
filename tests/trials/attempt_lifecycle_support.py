"""Fixtures of the attempt lifecycle tests (test_attempt_start, _pause_and_resume, _notes_and_submit,
_deadline, _slot_release): a 12-hour slot from a fixed start, the attempt in it, and the clock's units.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from tests import factories
from trials import services
from trials.models import Attempt, Reservation

HOURS_8 = timedelta(hours=8)


@pytest.fixture
def start() -> datetime:
    """When the reservation begins: a fixed moment in the recent past, so every `now` below is explicit."""
    return (timezone.now() - timedelta(days=1)).replace(microsecond=0)


@pytest.fixture
def reservation(expert: User, start: datetime) -> Reservation:
    """A 12-hour slot, so that the 8-hour clock (not the slot's end) decides the deadline unless a test says so."""
    return factories.ReservationFactory.create(
        expert=expert,
        environment=factories.environment("ai_rd_triton_cumsum"),
        starts_at=start,
        ends_at=start + timedelta(hours=12),
    )


@pytest.fixture
def attempt(reservation: Reservation, expert: User, start: datetime) -> Attempt:
    """Started a minute into the slot, its environment ready at once: the clock counts from that minute."""
    attempt = services.attempt_start(reservation=reservation, by=expert, now=start + timedelta(minutes=1))
    services.attempt_clock_start(attempt_id=attempt.pk, now=start + timedelta(minutes=1))
    return Attempt.objects.get(pk=attempt.pk)


def fresh(attempt: Attempt) -> Attempt:
    return Attempt.objects.prefetch_related("pauses").get(pk=attempt.pk)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
