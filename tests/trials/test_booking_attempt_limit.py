"""Booking rules of services.reservation_create on the study's limit of attempts per expert at each environment."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User

from environments.models import Environment
from tests import factories
from tests.trials.booking_support import book, now, refused, slot
from trials import services
from trials.models import Workstation

pytestmark = pytest.mark.django_db

__all__ = ["now", "slot"]  # the support module's fixtures, registered by import


def test_a_second_booking_at_the_same_environment_is_refused_by_the_one_attempt_rule(
    expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    assert env_cumsum.attempts_per_expert == 1
    first = book(expert, env_cumsum, workstation, slot)
    error = refused(
        "environment", expert=expert, environment=env_cumsum, workstation=workstation, starts_at=first.ends_at
    )
    assert str(error) == (
        "You have already booked or made 1 attempt at Triton cumulative sum; the study allows 1 per expert."
    )
    # Another environment is another first attempt.
    assert book(expert, factories.environment("ai_rd_optimize_llm_foundry"), workstation, first.ends_at).pk


def test_an_admin_booking_for_an_expert_is_held_to_the_experts_limit_and_the_message_names_them(
    expert: User, admin_user: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    first = book(expert, env_cumsum, workstation, slot)
    error = refused(
        "environment",
        expert=expert,
        environment=env_cumsum,
        workstation=workstation,
        starts_at=first.ends_at,
        created_by=admin_user,
    )
    assert str(error).startswith("ada has already booked or made 1 attempt")


def test_a_cancelled_booking_and_a_slot_that_passed_unused_do_not_count_against_the_limit(
    expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime, now: datetime
) -> None:
    cancelled = book(expert, env_cumsum, workstation, slot)
    services.reservation_cancel(reservation=cancelled, by=expert, now=now)
    unused = book(expert, env_cumsum, workstation, slot)
    later = unused.ends_at + timedelta(minutes=1)
    assert services.expert_attempts_counted(expert=expert, environment=env_cumsum, now=later) == 0
    Workstation.objects.filter(pk=workstation.pk).update(last_heartbeat_at=later)
    assert book(expert, env_cumsum, workstation, later + timedelta(minutes=1), now=later).pk


def test_a_started_attempt_counts_after_its_slot_is_over(
    expert: User, env_cumsum: Environment, workstation: Workstation, now: datetime
) -> None:
    reservation = book(expert, env_cumsum, workstation, now, now=now)
    attempt = services.attempt_start(reservation=reservation, by=expert, now=now + timedelta(seconds=1))
    services.attempt_clock_start(attempt_id=attempt.pk, now=now + timedelta(minutes=1))
    later = reservation.ends_at + timedelta(hours=1)
    Workstation.objects.filter(pk=workstation.pk).update(last_heartbeat_at=later)
    refused(
        "environment",
        expert=expert,
        environment=env_cumsum,
        workstation=workstation,
        starts_at=later + timedelta(minutes=1),
        now=later,
    )


def test_an_attempt_whose_environment_was_never_ready_gives_the_attempt_back_once_its_slot_is_over(
    expert: User, env_cumsum: Environment, workstation: Workstation, now: datetime
) -> None:
    reservation = book(expert, env_cumsum, workstation, now, now=now)
    attempt = services.attempt_start(reservation=reservation, by=expert, now=now + timedelta(seconds=1))
    services.attempt_preparation_fail(attempt_id=attempt.pk, reason="The start step crashed.")
    later = reservation.ends_at + timedelta(hours=1)
    Workstation.objects.filter(pk=workstation.pk).update(last_heartbeat_at=later)
    services.attempts_end_overdue(now=later)  # its slot's end ended it, its clock never started
    assert book(expert, env_cumsum, workstation, later + timedelta(minutes=1), now=later).pk != reservation.pk


def test_a_limit_of_two_allows_two_and_zero_lifts_the_limit(
    expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    env_cumsum.attempts_per_expert = 2
    env_cumsum.save()
    first = book(expert, env_cumsum, workstation, slot)
    second = book(expert, env_cumsum, workstation, first.ends_at)
    error = refused(
        "environment", expert=expert, environment=env_cumsum, workstation=workstation, starts_at=second.ends_at
    )
    assert "already booked or made 2 attempts" in str(error)
    env_cumsum.attempts_per_expert = 0
    env_cumsum.save()
    assert book(expert, env_cumsum, workstation, second.ends_at).pk
