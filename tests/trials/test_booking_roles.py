"""Booking rules of services.reservation_create on who books: experts for themselves, admins for experts."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.contrib.auth.models import User

from environments.models import Environment
from rebench_site.errors import NotAllowed
from tests import factories
from tests.trials.booking_support import book, now, refused, slot
from trials.models import Reservation, Workstation

pytestmark = pytest.mark.django_db

__all__ = ["now", "slot"]  # the support module's fixtures, registered by import


def test_a_user_without_the_expert_role_cannot_book(
    reviewer: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    refused("expert", expert=reviewer, environment=env_cumsum, workstation=workstation, starts_at=slot)


def test_an_admin_cannot_book_an_admin_who_is_not_an_expert(
    admin_user: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    refused("expert", expert=admin_user, environment=env_cumsum, workstation=workstation, starts_at=slot)


def test_an_expert_cannot_book_for_someone_else(
    expert: User, other_expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    with pytest.raises(NotAllowed):
        book(other_expert, env_cumsum, workstation, slot, created_by=expert)
    assert not Reservation.objects.exists()


def test_an_admin_books_for_an_expert(
    expert: User, admin_user: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    reservation = book(expert, env_cumsum, workstation, slot, created_by=admin_user)
    assert reservation.expert == expert
    assert reservation.created_by == admin_user
    # The expert's own overlap rule still holds for bookings an admin makes.
    refused(
        expert=expert,
        environment=env_cumsum,
        workstation=factories.WorkstationFactory.create(name="h100-b"),
        starts_at=slot,
        created_by=admin_user,
    )
