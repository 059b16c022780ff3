"""The slot after an attempt ends early in trials.services: the rest given back after the release margin."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User

from tests import factories
from tests.trials.attempt_lifecycle_support import attempt, minutes, reservation, start
from trials import services
from trials.models import Attempt, Reservation

pytestmark = pytest.mark.django_db

__all__ = ["attempt", "reservation", "start"]  # the support module\'s fixtures, registered by import


def test_an_early_end_gives_the_rest_of_the_slot_back_after_the_margin(
    reservation: Reservation, attempt: Attempt, expert: User, settings
) -> None:
    settings.RESERVATION_RELEASE_MARGIN = minutes(30)
    done = attempt.started_at + minutes(60)
    services.attempt_submit(attempt=attempt, by=expert, now=done)

    reservation.refresh_from_db()
    assert reservation.ends_at == done + minutes(30)  # was start + 12 h
    # Another expert books the workstation for right after the margin, inside the old slot.
    workstation = reservation.workstation
    workstation.last_heartbeat_at = done + minutes(30)
    workstation.save()
    other = factories.expert()
    booked = services.reservation_create(
        expert=other,
        environment=reservation.environment,
        workstation=workstation,
        starts_at=done + minutes(30),
        created_by=other,
        now=done + minutes(30),
    )
    assert booked.starts_at < attempt.started_at + timedelta(hours=12)


def test_an_end_closer_to_the_slots_end_than_the_margin_leaves_the_slot_as_it_was(
    reservation: Reservation, attempt: Attempt, expert: User, start: datetime, settings
) -> None:
    settings.RESERVATION_RELEASE_MARGIN = timedelta(hours=5)
    services.attempt_submit(attempt=attempt, by=expert, now=start + timedelta(hours=7, minutes=30))
    reservation.refresh_from_db()
    assert reservation.ends_at == start + timedelta(hours=12)
