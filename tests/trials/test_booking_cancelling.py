"""services.reservation_cancel: who may cancel when, and a cancelled slot freed for others."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User

from environments.models import Environment
from rebench_site.errors import NotAllowed, ServiceError
from tests import factories
from tests.trials.booking_support import book, now, slot
from trials import services
from trials.models import Reservation, Workstation

pytestmark = pytest.mark.django_db

__all__ = ["now", "slot"]  # the support module's fixtures, registered by import


def test_a_cancelled_reservation_frees_its_slot(
    expert: User, other_expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime, now: datetime
) -> None:
    first = book(expert, env_cumsum, workstation, slot)
    services.reservation_cancel(reservation=first, by=expert, now=now)
    first.refresh_from_db()
    assert first.cancelled_at == now
    assert first.state(now) == "cancelled"
    second = book(other_expert, env_cumsum, workstation, slot)
    # ...and the expert who cancelled may book the same time elsewhere.
    third = book(expert, env_cumsum, factories.WorkstationFactory.create(name="h100-b"), slot)
    assert {second.starts_at, third.starts_at} == {slot}
    assert Reservation.objects.filter(cancelled_at__isnull=True).count() == 2


def test_cancelling_twice_keeps_the_first_cancellation(
    expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime, now: datetime
) -> None:
    reservation = book(expert, env_cumsum, workstation, slot)
    services.reservation_cancel(reservation=reservation, by=expert, now=now)
    again = services.reservation_cancel(reservation=reservation, by=expert, now=now + timedelta(minutes=5))
    assert again.cancelled_at == now


def test_an_expert_cannot_cancel_once_the_slot_has_begun_but_an_admin_can(
    expert: User, admin_user: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    reservation = book(expert, env_cumsum, workstation, slot)
    during = slot + timedelta(minutes=10)
    with pytest.raises(ServiceError):
        services.reservation_cancel(reservation=reservation, by=expert, now=during)
    reservation.refresh_from_db()
    assert reservation.cancelled_at is None
    services.reservation_cancel(reservation=reservation, by=admin_user, now=during)
    reservation.refresh_from_db()
    assert reservation.cancelled_at == during


def test_nobody_cancels_a_reservation_whose_attempt_has_started(
    expert: User, admin_user: User, env_cumsum: Environment, workstation: Workstation, now: datetime
) -> None:
    reservation = book(expert, env_cumsum, workstation, now, now=now)
    services.attempt_start(reservation=reservation, by=expert, now=now + timedelta(seconds=1))
    for who in (expert, admin_user):
        with pytest.raises(ServiceError):
            services.reservation_cancel(reservation=reservation, by=who, now=now + timedelta(minutes=1))
    reservation.refresh_from_db()
    assert reservation.cancelled_at is None


def test_an_expert_cannot_cancel_someone_elses_reservation(
    expert: User, other_expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime, now: datetime
) -> None:
    reservation = book(expert, env_cumsum, workstation, slot)
    with pytest.raises(NotAllowed):
        services.reservation_cancel(reservation=reservation, by=other_expert, now=now)
    reservation.refresh_from_db()
    assert reservation.cancelled_at is None
