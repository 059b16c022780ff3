"""Booking rules of services.reservation_create on what takes bookings: the workstation and the environment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from environments.models import Environment
from tests import factories
from tests.trials.booking_support import book, now, refused, slot
from trials import services
from trials.models import Workstation

pytestmark = pytest.mark.django_db

__all__ = ["now", "slot"]  # the support module's fixtures, registered by import


def test_a_workstation_with_too_few_gpus_is_refused(expert: User, slot: datetime) -> None:
    scaling_law = factories.environment("ai_rd_small_scaling_law")
    assert scaling_law.gpus_min == 6
    four_gpus = factories.WorkstationFactory.create(name="h100-quad", gpu_count=4)
    error = refused("workstation", expert=expert, environment=scaling_law, workstation=four_gpus, starts_at=slot)
    assert "4 GPU" in error.message
    eight_gpus = factories.WorkstationFactory.create(name="h100-octo", gpu_count=8)
    assert book(expert, scaling_law, eight_gpus, slot).pk


def test_a_workstation_with_the_wrong_gpu_model_is_refused(
    expert: User, env_cumsum: Environment, slot: datetime
) -> None:
    a100 = factories.WorkstationFactory.create(name="a100-box", gpu_model="A100 40GB")
    refused("workstation", expert=expert, environment=env_cumsum, workstation=a100, starts_at=slot)


def test_a_gpu_less_environment_books_a_gpu_less_workstation(expert: User, slot: datetime) -> None:
    rust = factories.environment("ai_rd_rust_codecontests_inference")
    cpu_box = factories.WorkstationFactory.create(name="cpu-box", gpu_count=0, gpu_model="")
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
    silent = factories.WorkstationFactory.create(name="new-box", last_heartbeat_at=None)
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
