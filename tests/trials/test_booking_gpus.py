"""Bookings hold GPUs: which ones the allocator picks, several attempts on one host, the whole host for an
environment without GPUs, GPUs out of service, admins booking more GPUs, and a moved end."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from environments.models import Environment
from rebench_site.errors import NotAllowed, ServiceError
from tests import factories
from tests.factories import ClientFor
from tests.trials.booking_support import book, now, refused, slot
from tests.trials.reservations_api_support import booking, tomorrow_at
from trials import selectors, services
from trials.models import Gpu, Reservation, Workstation

pytestmark = pytest.mark.django_db

__all__ = ["now", "slot"]  # the support module's fixtures, registered by import


@pytest.mark.parametrize(
    ("free", "count", "chosen"),
    [
        ([0, 1, 2, 3, 4, 5, 6, 7], 1, [0]),
        ([0, 1, 2, 3, 4, 5, 6, 7], 4, [0, 1, 2, 3]),
        # The shortest run that fits: the pair 6-7 for two GPUs, the run of four kept for a bigger booking.
        ([0, 1, 2, 3, 6, 7], 2, [6, 7]),
        ([0, 1, 2, 3, 6, 7], 3, [0, 1, 2]),
        # Equal runs: the lower one.
        ([1, 2, 5, 6], 2, [1, 2]),
        # A lone GPU fills a gap before a run is broken.
        ([0, 2, 3, 4], 1, [0]),
        # No run long enough: the lowest free ones.
        ([0, 2, 4, 6], 3, [0, 2, 4]),
        ([0, 2, 4, 6], 4, [0, 2, 4, 6]),
        ([0, 2], 3, None),
        ([], 1, None),
    ],
)
def test_the_allocator_keeps_a_bookings_gpus_together_and_big_runs_whole(
    free: list[int], count: int, chosen: list[int] | None
) -> None:
    assert services.gpus_choose(free=free, count=count) == chosen


def test_eight_one_gpu_attempts_share_an_eight_gpu_host_and_the_ninth_is_refused(
    env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    experts = [factories.expert(username=f"e{i}") for i in range(9)]
    held = [
        book(expert, env_cumsum, workstation, slot + timedelta(minutes=i)).gpus for i, expert in enumerate(experts[:8])
    ]
    assert held == [[i] for i in range(8)]
    error = refused("starts_at", expert=experts[8], environment=env_cumsum, workstation=workstation, starts_at=slot)
    assert "already booked" in error.message


def test_a_two_gpu_booking_takes_a_free_pair_and_is_refused_when_only_scattered_gpus_would_not_do(
    env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    env_two = factories.environment("ai_rd_restricted_mlm")
    env_four = factories.environment("ai_rd_optimize_llm_foundry")
    four = book(factories.expert(username="four"), env_four, workstation, slot)
    one = book(factories.expert(username="one"), env_cumsum, workstation, slot)
    two = book(factories.expert(username="two"), env_two, workstation, slot)
    assert (four.gpus, one.gpus, two.gpus) == ([0, 1, 2, 3], [4], [5, 6])
    error = refused(
        "starts_at",
        expert=factories.expert(username="late"),
        environment=env_two,
        workstation=workstation,
        starts_at=slot,
    )
    assert error.message == "h100-a has 1 of its 8 GPUs free at that time; this booking needs 2."


def test_gpus_free_again_when_a_booking_ends_or_is_cancelled(
    expert: User, other_expert: User, env_cumsum: Environment, slot: datetime
) -> None:
    single = factories.WorkstationFactory.create(name="single", gpu_count=1)
    first = book(expert, env_cumsum, single, slot)
    # Back to back on the one GPU: half-open slots.
    after = book(other_expert, env_cumsum, single, first.ends_at)
    assert after.gpus == [0]
    services.reservation_cancel(reservation=first, by=expert)
    third = factories.expert(username="third")
    assert book(third, env_cumsum, single, slot).gpus == [0]


def test_an_environment_without_gpus_books_the_whole_host_and_keeps_gpu_bookings_out(
    expert: User, other_expert: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    rust = factories.environment("ai_rd_rust_codecontests_inference")
    whole = book(expert, rust, workstation, slot)
    assert whole.gpus == []
    assert whole.gpus_label == "whole host"
    error = refused("starts_at", expert=other_expert, environment=env_cumsum, workstation=workstation, starts_at=slot)
    assert error.message == "h100-a is already booked at that time."
    # And the other way round: one GPU taken, the whole host is not free.
    elsewhere = factories.WorkstationFactory.create(name="h100-b")
    book(other_expert, env_cumsum, elsewhere, slot + timedelta(days=1))
    refused(
        "starts_at",
        expert=factories.expert(username="third"),
        environment=rust,
        workstation=elsewhere,
        starts_at=slot + timedelta(days=1),
    )


def test_a_gpu_out_of_service_is_never_given_and_the_refusal_says_why(env_cumsum: Environment, slot: datetime) -> None:
    pair = factories.WorkstationFactory.create(name="pair", gpu_count=2)
    Gpu.objects.filter(workstation=pair, index=0).update(problem="12 uncorrected ECC errors")
    assert book(factories.expert(username="a"), env_cumsum, pair, slot).gpus == [1]
    error = refused(
        "starts_at", expert=factories.expert(username="b"), environment=env_cumsum, workstation=pair, starts_at=slot
    )
    assert error.message == (
        "pair has 0 of its 2 GPUs free at that time (out of service: GPU 0: 12 uncorrected ECC errors); "
        "this booking needs 1."
    )


def test_an_admin_books_more_gpus_up_to_the_environments_maximum_and_an_expert_cannot(
    admin_user: User, expert: User, workstation: Workstation, slot: datetime
) -> None:
    env = factories.environment("ai_rd_restricted_mlm")
    Environment.objects.filter(pk=env.pk).update(gpus_max=4)
    env.refresh_from_db()
    with pytest.raises(NotAllowed):
        book(expert, env, workstation, slot, gpu_count=4)
    assert not Reservation.objects.exists()
    reservation = book(expert, env, workstation, slot, gpu_count=4, created_by=admin_user)
    assert reservation.gpus == [0, 1, 2, 3]
    for count in (1, 5, 9):
        refused(
            "gpu_count",
            expert=factories.expert(username=f"x{count}"),
            environment=env,
            workstation=workstation,
            starts_at=slot + timedelta(days=2),
            gpu_count=count,
            created_by=admin_user,
        )


def test_moving_an_end_later_is_refused_only_by_a_booking_of_the_same_gpus(
    admin_user: User, env_cumsum: Environment, workstation: Workstation, slot: datetime
) -> None:
    first = book(factories.expert(username="a"), env_cumsum, workstation, slot)
    # Another GPU booked right after: moving the first's end over it is fine.
    book(
        factories.expert(username="b"),
        env_cumsum,
        workstation,
        first.ends_at,
    )
    assert Reservation.objects.get(ends_at=first.ends_at + (first.ends_at - first.starts_at)).gpus == [0]
    # That one took GPU 0 again (free from the first's end), so the first can't run on into it...
    with pytest.raises(ServiceError) as info:
        services.reservation_change_end(reservation=first, by=admin_user, ends_at=first.ends_at + timedelta(hours=1))
    assert "is booked from" in info.value.message
    # ...while one holding GPU 1 and ending before it started can.
    other = book(factories.expert(username="c"), env_cumsum, workstation, slot)
    assert other.gpus == [1]
    moved = services.reservation_change_end(
        reservation=other, by=admin_user, ends_at=other.ends_at + timedelta(hours=1)
    )
    assert moved.ends_at == other.ends_at + timedelta(hours=1)


def test_the_booking_page_counts_the_gpus_free_for_each_start(
    expert: User, env_cumsum: Environment, workstation: Workstation
) -> None:
    slot = tomorrow_at(9)
    env_four = factories.environment("ai_rd_optimize_llm_foundry")
    book(factories.expert(username="four"), env_four, workstation, slot)
    rows = selectors.free_slots(environment=env_cumsum, day=slot.date(), expert=expert)
    by_start = {s.starts_at: s for s in rows[0].slots}
    assert by_start[slot].gpus_free == 4
    assert by_start[slot].free
    rows = selectors.free_slots(environment=factories.environment("ai_rd_small_scaling_law"), day=slot.date())
    six = {s.starts_at: s for s in rows[0].slots}[slot]
    assert (six.gpus_free, six.free, six.why) == (4, False, "booked")


def test_the_schedule_draws_a_lane_per_gpu_and_a_whole_host_booking_in_each(env_cumsum: Environment) -> None:
    slot = tomorrow_at(9)
    quad = factories.WorkstationFactory.create(name="quad", gpu_count=4)
    cpu_box = factories.WorkstationFactory.create(name="cpu-box", gpu_count=0, gpu_model="")
    a = book(factories.expert(username="a"), env_cumsum, quad, slot)
    b = book(factories.expert(username="b"), factories.environment("ai_rd_restricted_mlm"), quad, slot)
    whole = book(
        factories.expert(username="c"), factories.environment("ai_rd_rust_codecontests_inference"), cpu_box, slot
    )
    _hours, rows = selectors.schedule_grid(day=slot.date())
    by_name = {row.workstation.name: row for row in rows}
    hour = slot.hour
    assert [lane.label for lane in by_name["quad"].lanes] == ["GPU 0", "GPU 1", "GPU 2", "GPU 3"]
    assert [lane.cells[hour].reservation for lane in by_name["quad"].lanes] == [a, b, b, None]
    assert [lane.label for lane in by_name["cpu-box"].lanes] == ["host"]
    assert by_name["cpu-box"].lanes[0].cells[hour].reservation == whole


def test_the_api_books_more_gpus_for_an_admin_and_refuses_an_expert(
    api: ClientFor, admin_user: User, expert: User, workstation: Workstation
) -> None:
    env = factories.environment("ai_rd_restricted_mlm")
    Environment.objects.filter(pk=env.pk).update(gpus_max=4)
    body = booking(workstation, environment=env.slug, gpu_count=4)
    assert api(expert).post("/api/reservations/", body, format="json").status_code == 403
    body["expert"] = expert.pk
    response = api(admin_user).post("/api/reservations/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["gpus"] == [0, 1, 2, 3]
    refused_body = booking(
        workstation,
        environment=env.slug,
        gpu_count=7,
        expert=expert.pk,
        starts_at=(tomorrow_at(9) + timedelta(days=3)).isoformat(),
    )
    response = api(admin_user).post("/api/reservations/", refused_body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"gpu_count"}


def test_admins_see_each_gpu_with_its_holder_and_health_and_experts_are_refused(
    admin_user: User, expert: User, env_cumsum: Environment, workstation: Workstation
) -> None:
    holder = book(expert, env_cumsum, workstation, timezone.now())
    Gpu.objects.filter(workstation=workstation, index=1).update(
        problem="3 uncorrected ECC errors", ecc_errors=3, memory_mb=81559, temperature_c=41
    )
    page = Client()
    page.force_login(admin_user)
    response = page.get(f"/workstations/{workstation.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<tr data-gpu=") == 8
    gpu0 = html.split('<tr data-gpu="0">')[1].split("</tr>")[0]
    assert f"{expert.username} · {env_cumsum.slug}" in gpu0
    gpu1 = html.split('<tr data-gpu="1">')[1].split("</tr>")[0]
    assert "3 uncorrected ECC errors" in gpu1
    assert "81559 MiB" in gpu1
    assert "free" in gpu1
    assert holder.gpus_label == "GPU 0"
    schedule = page.get(f"/schedule/?day={timezone.localtime(holder.starts_at).date().isoformat()}").content.decode()
    assert schedule.count('data-lane="GPU ') == 8
    assert 'title="out of service: 3 uncorrected ECC errors"' in schedule
    expert_page = Client()
    expert_page.force_login(expert)
    assert expert_page.get(f"/workstations/{workstation.pk}/").status_code == 403
    assert expert_page.get("/schedule/").status_code == 403
