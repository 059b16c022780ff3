"""Fifty simultaneous bookings: of one GPU, exactly one wins; of overlapping GPU sets on one host, no GPU is
ever held twice and nobody is refused a booking that would have fitted. Each thread on its own database connection."""

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
def test_fifty_concurrent_bookings_of_a_one_gpu_workstation_let_exactly_one_win(
    vendor: str, stagger: timedelta
) -> None:
    assert connection.vendor == vendor
    environment = factories.environment("ai_rd_triton_cumsum")
    workstation = factories.WorkstationFactory.create(name="contested", gpu_count=1)
    expert_ids = [user.pk for user in make_experts(RACERS)]
    # Fifty different experts: only the GPU rule can refuse them. Staggered starts all
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
    assert winner.gpus == [0]


# Environments of 1, 2 and 4 GPUs, in turn: fifty bookings ask for overlapping sets of one host's eight.
MIXED_SIZES = ["ai_rd_triton_cumsum", "ai_rd_restricted_mlm", "ai_rd_optimize_llm_foundry"]


@ON_EITHER_DATABASE
@pytest.mark.parametrize("stagger", [timedelta(0), timedelta(minutes=7)], ids=["same-start", "staggered-starts"])
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_bookings_of_overlapping_gpu_sets_never_hold_a_gpu_twice(
    vendor: str, stagger: timedelta
) -> None:
    assert connection.vendor == vendor
    environments = [factories.environment(slug) for slug in MIXED_SIZES]
    workstation = factories.WorkstationFactory.create(name="shared", gpu_count=8)
    expert_ids = [user.pk for user in make_experts(RACERS)]
    starts_at = slot_start()

    def prepare(i: int) -> Booking:
        expert = User.objects.get(pk=expert_ids[i])
        env = Environment.objects.get(pk=environments[i % len(environments)].pk)
        ws = Workstation.objects.get(pk=workstation.pk)
        start = starts_at + i * stagger
        return lambda: services.reservation_create(
            expert=expert, environment=env, workstation=ws, starts_at=start, created_by=expert
        )

    outcomes = race(prepare)
    wins = [o for o in outcomes if isinstance(o, Reservation)]
    refusals = [o for o in outcomes if isinstance(o, ServiceError)]
    assert [o for o in outcomes if not isinstance(o, Reservation | ServiceError)] == []
    assert len(wins) + len(refusals) == RACERS
    assert all(error.field == "starts_at" and error.message.startswith("shared ") for error in refusals)
    live = list(Reservation.objects.filter(cancelled_at__isnull=True).select_related("environment"))
    assert sorted(r.pk for r in live) == sorted(r.pk for r in wins)
    for reservation in live:
        assert len(reservation.gpus) == reservation.environment.gpus_min
        assert set(reservation.gpus) <= set(range(8))
    # No GPU held by two reservations whose times overlap (every pair here overlaps in time).
    for one in live:
        for other in live:
            if one.pk < other.pk and one.starts_at < other.ends_at and other.starts_at < one.ends_at:
                assert not set(one.gpus) & set(other.gpus), (one.gpus, other.gpus)
    # Holdings only grew while the race ran, so a refused booking can't fit in the final state
    # either: had the service refused one that fitted, this would show it.
    length = services.reservation_min_length(environments[0])
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, ServiceError):
            start = starts_at + i * stagger
            holders = [r for r in live if r.starts_at < start + length and r.ends_at > start]
            assert len(services.gpus_free(workstation=workstation, holders=holders)) < environments[i % 3].gpus_min
    if stagger == timedelta(0):
        assert sorted(gpu for r in live for gpu in r.gpus) == list(range(8))


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
@pytest.mark.parametrize(
    ("held", "wanted"),
    [([2, 3], [3]), ([2], [0, 1, 2, 5]), ([], [7]), ([4], []), ([], [])],
    ids=["shared-gpu", "inside-a-larger-set", "whole-host-then-a-gpu", "a-gpu-then-the-whole-host", "whole-host-twice"],
)
def test_the_exclusion_constraint_refuses_a_row_that_holds_a_held_gpu(
    expert: User,
    other_expert: User,
    env_cumsum: Environment,
    workstation: Workstation,
    held: list[int],
    wanted: list[int],
) -> None:
    start = slot_start()
    end = start + timedelta(hours=9)
    write_directly(
        expert=expert,
        workstation=workstation,
        environment=env_cumsum,
        starts_at=start,
        ends_at=end,
        created_by=expert,
        gpus=held,
    )
    with pytest.raises(IntegrityError) as info:
        write_directly(
            expert=other_expert,
            workstation=workstation,
            environment=env_cumsum,
            starts_at=start + timedelta(hours=1),
            ends_at=end + timedelta(hours=1),
            created_by=other_expert,
            gpus=wanted,
        )
    assert info.value.__cause__.diag.constraint_name == "reservation_no_gpu_overlap"
    assert Reservation.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_exclusion_constraint_lets_other_gpus_of_one_workstation_be_held_at_the_same_time(
    expert: User, other_expert: User, env_cumsum: Environment, workstation: Workstation
) -> None:
    start = slot_start()
    end = start + timedelta(hours=9)
    for who, gpus in [(expert, [0, 1]), (other_expert, [2]), (factories.expert(username="third"), [3, 7])]:
        write_directly(
            expert=who,
            workstation=workstation,
            environment=env_cumsum,
            starts_at=start,
            ends_at=end,
            created_by=who,
            gpus=gpus,
        )
    # The same GPU on another workstation is another GPU.
    write_directly(
        expert=factories.expert(username="fourth"),
        workstation=factories.WorkstationFactory.create(name="h100-b"),
        environment=env_cumsum,
        starts_at=start,
        ends_at=end,
        created_by=expert,
        gpus=[0, 1],
    )
    assert Reservation.objects.filter(cancelled_at__isnull=True).count() == 4


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
