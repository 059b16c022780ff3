"""Booking rules of services.reservation_create and reservation_cancel, on whichever database is configured."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from environments.models import Environment
from rebench_site.errors import NotAllowed, ServiceError
from tests import factories
from trials import selectors, services
from trials.models import Reservation, Workstation

pytestmark = pytest.mark.django_db


@pytest.fixture
def now() -> datetime:
    return timezone.now()


@pytest.fixture
def slot(now: datetime) -> datetime:
    """A start time tomorrow, on the minute."""
    return (now + timedelta(days=1)).replace(second=0, microsecond=0)


def book(
    expert: User, environment: Environment, workstation: Workstation, starts_at: datetime, **kwargs: Any
) -> Reservation:
    kwargs.setdefault("created_by", expert)
    return services.reservation_create(
        expert=expert, environment=environment, workstation=workstation, starts_at=starts_at, **kwargs
    )


def refused(field: str | None = None, **booking: Any) -> ServiceError:
    """Book, expect a ServiceError (naming `field`), and check that nothing was written."""
    count = Reservation.objects.count()
    with pytest.raises(ServiceError) as info:
        book(**booking)
    assert Reservation.objects.count() == count
    if field is not None:
        assert info.value.field == field
    return info.value


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


def test_an_overlapping_booking_on_the_same_workstation_is_refused(
    expert: User, other_expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
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
    elsewhere = factories.WorkstationFactory(name="h100-b")
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
    third = book(expert, env_cumsum, factories.WorkstationFactory(name="h100-b"), first.ends_at)
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


def test_a_workstation_with_too_few_gpus_is_refused(expert: User, slot: datetime) -> None:
    scaling_law = factories.environment("ai_rd_small_scaling_law")
    assert scaling_law.gpus_min == 6
    four_gpus = factories.WorkstationFactory(name="h100-quad", gpu_count=4)
    error = refused("workstation", expert=expert, environment=scaling_law, workstation=four_gpus, starts_at=slot)
    assert "4 GPU" in error.message
    eight_gpus = factories.WorkstationFactory(name="h100-octo", gpu_count=8)
    assert book(expert, scaling_law, eight_gpus, slot).pk


def test_a_workstation_with_the_wrong_gpu_model_is_refused(
    expert: User, env_cumsum: Environment, slot: datetime
) -> None:
    a100 = factories.WorkstationFactory(name="a100-box", gpu_model="A100 40GB")
    refused("workstation", expert=expert, environment=env_cumsum, workstation=a100, starts_at=slot)


def test_a_gpu_less_environment_books_a_gpu_less_workstation(expert: User, slot: datetime) -> None:
    rust = factories.environment("ai_rd_rust_codecontests_inference")
    cpu_box = factories.WorkstationFactory(name="cpu-box", gpu_count=0, gpu_model="")
    assert book(expert, rust, cpu_box, slot).pk


def test_a_draining_workstation_takes_no_bookings(
    expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    services.workstation_set_status(workstation=workstation, status=Workstation.Status.DRAINING)
    error = refused("workstation", expert=expert, environment=env_cumsum, workstation=workstation, starts_at=slot)
    assert "draining" in error.message


def test_a_workstation_silent_for_longer_than_the_offline_limit_takes_no_bookings(
    expert: User,
    env_cumsum: Environment,
    workstation: Workstation,
    slot: datetime,
    now: datetime,
) -> None:
    silent_for = settings.WORKSTATION_OFFLINE_AFTER + timedelta(seconds=5)
    assert silent_for > timedelta(minutes=2)
    Workstation.objects.filter(pk=workstation.pk).update(last_heartbeat_at=now - silent_for)
    error = refused(
        "workstation", expert=expert, environment=env_cumsum, workstation=workstation, starts_at=slot, now=now
    )
    assert "offline" in error.message
    # A heartbeat brings it back.
    services.workstation_record_heartbeat(workstation_id=workstation.pk, at=now)
    assert book(expert, env_cumsum, workstation, slot, now=now).pk


def test_a_workstation_that_never_sent_a_heartbeat_takes_no_bookings(
    expert: User, env_cumsum: Environment, slot: datetime
) -> None:
    silent = factories.WorkstationFactory(name="new-box", last_heartbeat_at=None)
    refused("workstation", expert=expert, environment=env_cumsum, workstation=silent, starts_at=slot)


def test_the_heartbeat_is_read_under_the_lock_not_from_the_callers_stale_copy(
    expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime, now: datetime
) -> None:
    stale_copy = Workstation.objects.get(pk=workstation.pk)
    Workstation.objects.filter(pk=workstation.pk).update(status=Workstation.Status.DRAINING)
    refused("workstation", expert=expert, environment=env_cumsum, workstation=stale_copy, starts_at=slot, now=now)


def test_an_inactive_environment_takes_no_bookings(
    expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    Environment.objects.filter(pk=env_cumsum.pk).update(is_active=False)
    env_cumsum.refresh_from_db()
    refused("environment", expert=expert, environment=env_cumsum, workstation=workstation, starts_at=slot)


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
        workstation=factories.WorkstationFactory(name="h100-b"),
        starts_at=slot,
        created_by=admin_user,
    )


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
    third = book(expert, env_cumsum, factories.WorkstationFactory(name="h100-b"), slot)
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


def test_a_workstation_that_reports_it_cant_sandbox_takes_no_bookings_and_says_why(
    expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime, now: datetime, settings: Any
) -> None:
    services.workstation_record_heartbeat(
        workstation_id=workstation.pk, sandbox_problems=["bubblewrap is not installed"], at=now
    )
    error = refused(
        "workstation", expert=expert, environment=env_cumsum, workstation=workstation, starts_at=slot, now=now
    )
    assert "can't sandbox attempts (bubblewrap is not installed)" in error.message
    # Only the admin's explicit setting lets it take bookings anyway (the admin pages say so in red).
    settings.SANDBOX_ALLOW_UNSAFE = True
    assert book(expert, env_cumsum, workstation, slot, now=now).pk


def test_a_booking_holds_the_gpus_its_environment_needs(
    expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime, now: datetime
) -> None:
    assert book(expert, env_cumsum, workstation, slot, now=now).gpus == list(range(env_cumsum.gpus_min))


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
    services.attempt_start(reservation=reservation, by=expert, now=now + timedelta(seconds=1))
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


def test_a_slot_given_back_this_minute_offers_now_from_its_end_to_the_next_whole_second(
    expert: User, other_expert: User, env_cumsum: Environment, workstation: Workstation
) -> None:
    now = timezone.now().replace(second=40, microsecond=0)
    freed_at = now.replace(second=12, microsecond=250_000)
    given_back = factories.ReservationFactory(
        expert=other_expert, environment=env_cumsum, workstation=workstation, starts_at=freed_at - timedelta(hours=2)
    )
    Reservation.objects.filter(pk=given_back.pk).update(ends_at=freed_at)
    Workstation.objects.filter(pk=workstation.pk).update(last_heartbeat_at=now)
    (row,) = selectors.free_slots(environment=env_cumsum, day=timezone.localdate(now), expert=expert, now=now)
    (slot,) = [s for s in row.slots if s.is_now]
    assert slot.starts_at == now.replace(second=13)
    assert slot.free
    assert book(expert, env_cumsum, workstation, slot.starts_at, now=now).starts_at == now.replace(second=13)
