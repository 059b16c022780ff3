"""Starting an attempt in trials.services: inside its own slot only, once, with what it starts at recorded."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User

from rebench_site.errors import NotAllowed, ServiceError
from tests import factories
from tests.trials.attempt_lifecycle_support import HOURS_8, fresh, minutes, reservation, start
from trials import services
from trials.models import Attempt, Reservation

pytestmark = pytest.mark.django_db

__all__ = ["reservation", "start"]  # the support module\'s fixtures, registered by import


def test_the_expert_starts_the_attempt_inside_the_slot(reservation: Reservation, expert: User, start: datetime) -> None:
    now = start + minutes(10)
    attempt = services.attempt_start(reservation=reservation, by=expert, now=now)
    assert attempt.status == Attempt.Status.RUNNING
    assert attempt.started_at == now
    assert attempt.user == expert
    assert attempt.time_limit == HOURS_8 == reservation.environment.time_limit
    assert attempt.hard_stop_at == reservation.ends_at
    assert attempt.workstation_id == reservation.workstation_id
    # Its environment is prepared first: until then only the slot's end stands.
    assert attempt.clock_started_at is None
    assert fresh(attempt).deadline() == reservation.ends_at
    services.attempt_clock_start(attempt_id=attempt.pk, now=now + minutes(2))
    assert fresh(attempt).deadline() == now + minutes(2) + HOURS_8


def test_an_attempt_records_its_configuration_package_version_and_scorer_at_the_start(
    reservation: Reservation, expert: User, start: datetime, settings
) -> None:
    from environments import packages

    settings.ENVIRONMENT_CONFIGURATION = "small"
    settings.ENVIRONMENT_CONFIGURATION_OVERRIDES = {}
    reservation.environment = factories.environment("ai_rd_fix_embedding")
    reservation.save()
    attempt = services.attempt_start(reservation=reservation, by=expert, now=start + minutes(1))
    package = packages.find("ai_rd_fix_embedding")

    assert attempt.configuration.name == "small"
    assert (attempt.configuration.starting_score, attempt.configuration.reference_score) == (
        package.configurations["small"].starting_score,
        package.configurations["small"].reference_score,
    )
    assert attempt.package_version == package.version == "1.0"
    assert attempt.scorer_digest == package.scorer_digest()
    # The site switching to full later changes nothing about this attempt.
    settings.ENVIRONMENT_CONFIGURATION = "full"
    assert Attempt.objects.get(pk=attempt.pk).configuration.name == "small"


def test_starting_twice_returns_the_same_attempt(reservation: Reservation, expert: User, start: datetime) -> None:
    first = services.attempt_start(reservation=reservation, by=expert, now=start + minutes(1))
    second = services.attempt_start(reservation=reservation, by=expert, now=start + minutes(30))
    assert second.pk == first.pk
    assert second.started_at == start + minutes(1)
    assert Attempt.objects.count() == 1


def test_the_attempt_cannot_start_before_the_slot(reservation: Reservation, expert: User, start: datetime) -> None:
    with pytest.raises(ServiceError) as info:
        services.attempt_start(reservation=reservation, by=expert, now=start - minutes(1))
    assert info.value.field == "reservation"
    assert not Attempt.objects.exists()


def test_the_attempt_cannot_start_once_the_slot_is_over(reservation: Reservation, expert: User) -> None:
    with pytest.raises(ServiceError):
        services.attempt_start(reservation=reservation, by=expert, now=reservation.ends_at)
    assert not Attempt.objects.exists()


def test_a_cancelled_reservation_cannot_be_started(
    reservation: Reservation, expert: User, admin_user: User, start: datetime
) -> None:
    services.reservation_cancel(reservation=reservation, by=admin_user, now=start + minutes(1))
    with pytest.raises(ServiceError):
        services.attempt_start(reservation=reservation, by=expert, now=start + minutes(2))
    assert not Attempt.objects.exists()


def test_another_expert_cannot_start_someone_elses_slot(
    reservation: Reservation, other_expert: User, start: datetime
) -> None:
    with pytest.raises(NotAllowed):
        services.attempt_start(reservation=reservation, by=other_expert, now=start + minutes(1))
    assert not Attempt.objects.exists()


def test_a_slot_shorter_than_the_time_limit_ends_at_the_slots_end(expert: User, start: datetime) -> None:
    short = factories.ReservationFactory.create(expert=expert, starts_at=start, ends_at=start + timedelta(hours=6))
    attempt = services.attempt_start(reservation=short, by=expert, now=start)
    assert fresh(attempt).deadline() == short.ends_at
