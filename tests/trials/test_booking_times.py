"""Booking rules of services.reservation_create on when a slot starts and ends: the past, the horizon, overlaps."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from environments.models import Environment
from tests import factories
from tests.trials.booking_support import book, now, refused, slot
from trials import selectors
from trials.models import Reservation, Workstation

pytestmark = pytest.mark.django_db

__all__ = ["now", "slot"]  # the support module's fixtures, registered by import


def test_an_expert_books_a_free_slot(
    expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    reservation = book(expert, env_cumsum, workstation, slot)
    assert reservation.pk is not None
    assert reservation.expert == expert
    assert reservation.created_by == expert
    assert reservation.starts_at == slot
    assert reservation.ends_at == slot + env_cumsum.time_limit + settings.RESERVATION_SETUP_TIME
    assert Reservation.objects.get().pk == reservation.pk


def test_a_start_in_the_past_is_refused(
    expert: User, env_cumsum: Environment, workstation: Workstation, now: datetime
) -> None:
    refused(
        "starts_at", expert=expert, environment=env_cumsum, workstation=workstation, starts_at=now - timedelta(hours=1)
    )


def test_a_start_a_moment_ago_is_allowed_for_the_form_filled_a_minute_back(
    expert: User, env_cumsum: Environment, workstation: Workstation, now: datetime
) -> None:
    assert book(expert, env_cumsum, workstation, now - timedelta(minutes=1), now=now).pk


def test_a_start_beyond_the_booking_horizon_is_refused(
    expert: User, env_cumsum: Environment, workstation: Workstation, now: datetime
) -> None:
    too_far = now + timedelta(days=settings.BOOKING_HORIZON_DAYS, hours=1)
    refused("starts_at", expert=expert, environment=env_cumsum, workstation=workstation, starts_at=too_far)


def test_a_naive_start_time_is_refused(
    expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    naive = slot.replace(tzinfo=None)
    refused("starts_at", expert=expert, environment=env_cumsum, workstation=workstation, starts_at=naive)


def test_an_overlapping_booking_of_the_same_gpu_is_refused(
    expert: User, other_expert: User, env_cumsum: Environment, slot: datetime
) -> None:
    workstation = factories.WorkstationFactory.create(name="h100-single", gpu_count=1)
    book(expert, env_cumsum, workstation, slot)
    refused(
        "starts_at",
        expert=other_expert,
        environment=env_cumsum,
        workstation=workstation,
        starts_at=slot + timedelta(hours=2),
    )
    # One that ends inside the first is refused too.
    refused(
        "starts_at",
        expert=other_expert,
        environment=env_cumsum,
        workstation=workstation,
        starts_at=slot - timedelta(hours=4),
    )


def test_the_same_expert_cannot_overlap_themselves_on_another_workstation(
    expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    book(expert, env_cumsum, workstation, slot)
    elsewhere = factories.WorkstationFactory.create(name="h100-b")
    error = refused(expert=expert, environment=env_cumsum, workstation=elsewhere, starts_at=slot + timedelta(hours=1))
    assert "overlaps" in error.message


def test_back_to_back_slots_are_allowed(
    expert: User, other_expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    # Slots, not the study's one-attempt rule: each expert books this environment twice here.
    env_cumsum.attempts_per_expert = 0
    env_cumsum.save()
    first = book(expert, env_cumsum, workstation, slot)
    second = book(other_expert, env_cumsum, workstation, first.ends_at)
    before = book(other_expert, env_cumsum, workstation, slot - (first.ends_at - first.starts_at))
    # The same expert back to back on another workstation, too.
    third = book(expert, env_cumsum, factories.WorkstationFactory.create(name="h100-b"), first.ends_at)
    assert before.ends_at == first.starts_at
    assert second.starts_at == first.ends_at == third.starts_at
    assert Reservation.objects.count() == 4


def test_a_slot_shorter_than_the_time_limit_plus_set_up_is_refused(
    expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    refused(
        "ends_at",
        expert=expert,
        environment=env_cumsum,
        workstation=workstation,
        starts_at=slot,
        ends_at=slot + env_cumsum.time_limit,
    )


def test_a_slot_given_back_this_minute_offers_now_from_its_end_to_the_next_whole_second(
    expert: User, other_expert: User, env_cumsum: Environment, workstation: Workstation
) -> None:
    now = timezone.now().replace(second=40, microsecond=0)
    freed_at = now.replace(second=12, microsecond=250_000)
    given_back = factories.ReservationFactory.create(
        expert=other_expert, environment=env_cumsum, workstation=workstation, starts_at=freed_at - timedelta(hours=2)
    )
    Reservation.objects.filter(pk=given_back.pk).update(ends_at=freed_at)
    Workstation.objects.filter(pk=workstation.pk).update(last_heartbeat_at=now)
    (row,) = selectors.free_slots(environment=env_cumsum, day=timezone.localdate(now), expert=expert, now=now)
    (slot,) = [s for s in row.slots if s.is_now]
    assert slot.starts_at == now.replace(second=13)
    assert slot.free
    assert book(expert, env_cumsum, workstation, slot.starts_at, now=now).starts_at == now.replace(second=13)
