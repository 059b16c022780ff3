"""Fifty simultaneous bookings of one slot: exactly one wins, each thread on its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, User
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from environments.models import Environment
from rebench_site import roles
from rebench_site.errors import ServiceError
from tests import factories
from trials import services
from trials.models import Reservation, Workstation

RACERS = 50
ON_SQLITE = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")

# The same race on both databases: PostgreSQL decides it with row locks (and the exclusion
# constraints behind them), SQLite with IMMEDIATE transactions.
ON_EITHER_DATABASE = pytest.mark.parametrize(
    "vendor",
    [
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("sqlite", marks=pytest.mark.skipif(not ON_SQLITE, reason="runs on SQLite only")),
    ],
)

Booking = Callable[[], Reservation]
T = TypeVar("T")  # what each racer's action returns


def make_experts(count: int) -> list[User]:
    """Experts without password hashing (fifty PBKDF2 rounds would dwarf the race itself)."""
    users = User.objects.bulk_create([User(username=f"racer{i}", password=make_password(None)) for i in range(count)])
    Group.objects.get_or_create(name=roles.EXPERT)[0].user_set.add(*users)
    return users


def race(prepare: Callable[[int], Callable[[], T]], racers: int = RACERS) -> list[T | BaseException]:
    """Run `racers` bookings at once, each in its own thread and database connection.

    `prepare(i)` runs in thread i before the barrier (loading its own rows); the booking it
    returns runs right after, when every thread has reached the barrier.
    """
    barrier = threading.Barrier(racers)
    outcomes: list[T | BaseException | None] = [None] * racers

    def run(i: int) -> None:
        try:
            booking = prepare(i)
            barrier.wait(timeout=60)
            outcomes[i] = booking()
        except BaseException as exc:
            outcomes[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


def assert_exactly_one_winner(outcomes: list[Reservation | BaseException]) -> Reservation:
    wins = [o for o in outcomes if isinstance(o, Reservation)]
    refusals = [o for o in outcomes if isinstance(o, ServiceError)]
    unexpected = [o for o in outcomes if not isinstance(o, Reservation | ServiceError)]
    assert unexpected == []
    assert len(wins) == 1
    assert len(refusals) == RACERS - 1
    assert all(error.field == "starts_at" for error in refusals)
    live = Reservation.objects.filter(cancelled_at__isnull=True)
    assert list(live.values_list("pk", flat=True)) == [wins[0].pk]
    return wins[0]


def slot_start() -> datetime:
    return (timezone.now() + timedelta(days=2)).replace(second=0, microsecond=0)


@ON_EITHER_DATABASE
@pytest.mark.parametrize("stagger", [timedelta(0), timedelta(minutes=7)], ids=["same-start", "staggered-starts"])
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_bookings_of_one_workstation_let_exactly_one_win(vendor: str, stagger: timedelta) -> None:
    assert connection.vendor == vendor
    environment = factories.environment("ai_rd_triton_cumsum")
    workstation = factories.WorkstationFactory.create(name="contested")
    expert_ids = [user.pk for user in make_experts(RACERS)]
    # Fifty different experts: only the workstation rule can refuse them. Staggered starts all
    # still overlap each other (50 × 7 min < one 8.5 h slot).
    starts_at = slot_start()

    def prepare(i: int) -> Booking:
        expert = User.objects.get(pk=expert_ids[i])
        env = Environment.objects.get(pk=environment.pk)
        ws = Workstation.objects.get(pk=workstation.pk)
        start = starts_at + i * stagger
        return lambda: services.reservation_create(
            expert=expert, environment=env, workstation=ws, starts_at=start, created_by=expert
        )

    winner = assert_exactly_one_winner(race(prepare))
    assert winner.workstation_id == workstation.pk


@ON_EITHER_DATABASE
@pytest.mark.django_db(transaction=True)
def test_one_expert_booking_fifty_workstations_at_once_gets_exactly_one(vendor: str) -> None:
    assert connection.vendor == vendor
    environment = factories.environment("ai_rd_triton_cumsum")
    expert = make_experts(1)[0]
    workstation_ids = [ws.pk for ws in factories.WorkstationFactory.create_batch(RACERS)]
    starts_at = slot_start()

    def prepare(i: int) -> Booking:
        me = User.objects.get(pk=expert.pk)
        env = Environment.objects.get(pk=environment.pk)
        ws = Workstation.objects.get(pk=workstation_ids[i])
        return lambda: services.reservation_create(
            expert=me, environment=env, workstation=ws, starts_at=starts_at, created_by=me
        )

    winner = assert_exactly_one_winner(race(prepare))
    assert winner.expert_id == expert.pk


# --- the PostgreSQL backstop ------------------------------------------------------------------


def write_directly(**fields: object) -> Reservation:
    """A reservation row written past the booking service, as a bug or a script might."""
    with transaction.atomic():
        return Reservation.objects.create(**fields)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_exclusion_constraint_refuses_an_overlapping_row_on_one_workstation(
    expert: User, other_expert: User, env_cumsum: Environment, workstation: Workstation
) -> None:
    start = slot_start()
    end = start + timedelta(hours=9)
    write_directly(
        expert=expert, workstation=workstation, environment=env_cumsum, starts_at=start, ends_at=end, created_by=expert
    )
    with pytest.raises(IntegrityError) as info:
        write_directly(
            expert=other_expert,
            workstation=workstation,
            environment=env_cumsum,
            starts_at=start + timedelta(hours=1),
            ends_at=end + timedelta(hours=1),
            created_by=other_expert,
        )
    assert info.value.__cause__.diag.constraint_name == "reservation_no_workstation_overlap"
    assert Reservation.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_exclusion_constraint_refuses_one_expert_in_two_places_at_once(
    expert: User, env_cumsum: Environment, workstation: Workstation
) -> None:
    start = slot_start()
    end = start + timedelta(hours=9)
    write_directly(
        expert=expert, workstation=workstation, environment=env_cumsum, starts_at=start, ends_at=end, created_by=expert
    )
    elsewhere = factories.WorkstationFactory.create(name="h100-b")
    with pytest.raises(IntegrityError) as info:
        write_directly(
            expert=expert,
            workstation=elsewhere,
            environment=env_cumsum,
            starts_at=start,
            ends_at=end,
            created_by=expert,
        )
    assert info.value.__cause__.diag.constraint_name == "reservation_no_expert_overlap"
    assert Reservation.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_exclusion_constraint_lets_back_to_back_and_cancelled_rows_be(
    expert: User, other_expert: User, env_cumsum: Environment, workstation: Workstation
) -> None:
    start = slot_start()
    end = start + timedelta(hours=9)
    first = write_directly(
        expert=expert, workstation=workstation, environment=env_cumsum, starts_at=start, ends_at=end, created_by=expert
    )
    # Half-open ranges: the next slot may begin the moment this one ends.
    write_directly(
        expert=other_expert,
        workstation=workstation,
        environment=env_cumsum,
        starts_at=end,
        ends_at=end + timedelta(hours=9),
        created_by=other_expert,
    )
    Reservation.objects.filter(pk=first.pk).update(cancelled_at=timezone.now())
    write_directly(
        expert=other_expert,
        workstation=factories.WorkstationFactory.create(name="h100-b"),
        environment=env_cumsum,
        starts_at=start - timedelta(hours=9),
        ends_at=start,
        created_by=other_expert,
    )
    write_directly(
        expert=expert, workstation=workstation, environment=env_cumsum, starts_at=start, ends_at=end, created_by=expert
    )
    assert Reservation.objects.filter(cancelled_at__isnull=True).count() == 3
