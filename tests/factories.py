"""Factories for test data: users with roles, workstations, environments, reservations, attempts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, User
from django.utils import timezone
from rest_framework.test import APIClient

from environments.models import Environment
from environments.services import environment_configuration_for, environment_sync_registry
from trials.models import Attempt, Gpu, Reservation, Workstation

# The `api` fixture (tests/conftest.py): `api(user)` is an API client signed in as `user`, `api(None)` anonymous.
ClientFor = Callable[[AbstractBaseUser | None], APIClient]

PASSWORD = "correct-horse-battery"


def _add_roles(user: User, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
    """UserFactory's `roles=[...]`: the user joins those groups."""
    for name in extracted or []:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    user.save()


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)
    roles = factory.PostGeneration(_add_roles)


def expert(**kwargs: object) -> User:
    return UserFactory.create(roles=["expert"], **kwargs)


def reviewer(**kwargs: object) -> User:
    return UserFactory.create(roles=["reviewer"], **kwargs)


def admin(**kwargs: object) -> User:
    return UserFactory.create(roles=["admin"], is_staff=True, **kwargs)


def environment(slug: str = "ai_rd_triton_cumsum") -> Environment:
    environment_sync_registry()
    return Environment.objects.get(slug=slug)


class WorkstationFactory(factory.django.DjangoModelFactory[Workstation]):
    class Meta:
        model = Workstation

    name = factory.Sequence(lambda n: f"gpu-box-{n}")
    host = factory.LazyAttribute(lambda w: f"{w.name}.example.test")
    gpu_count = 8
    gpu_model = "H100 80GB"
    queue_name = factory.LazyAttribute(lambda w: f"ws.{w.name}")
    backend = Workstation.Backend.SSH
    status = Workstation.Status.ACTIVE
    last_heartbeat_at = factory.LazyFunction(timezone.now)

    @classmethod
    def _create(cls, model_class: type[Workstation], *args: Any, **kwargs: Any) -> Workstation:
        """The workstation with a Gpu row per index, as registering one makes them."""
        workstation = super()._create(model_class, *args, **kwargs)
        Gpu.objects.bulk_create(
            [Gpu(workstation=workstation, index=i, model=workstation.gpu_model) for i in range(workstation.gpu_count)]
        )
        return workstation


class ReservationFactory(factory.django.DjangoModelFactory[Reservation]):
    """A reservation written directly (no booking rules): for setting up state, not testing booking."""

    class Meta:
        model = Reservation

    expert = factory.LazyFunction(expert)
    workstation = factory.SubFactory(WorkstationFactory)
    environment = factory.LazyFunction(environment)
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=5))
    ends_at = factory.LazyAttribute(lambda r: r.starts_at + r.environment.time_limit + timedelta(minutes=30))
    created_by = factory.SelfAttribute("expert")


class AttemptFactory(factory.django.DjangoModelFactory[Attempt]):
    class Meta:
        model = Attempt

    reservation = factory.SubFactory(ReservationFactory)
    user = factory.SelfAttribute("reservation.expert")
    environment = factory.SelfAttribute("reservation.environment")
    workstation = factory.SelfAttribute("reservation.workstation")
    time_limit = factory.SelfAttribute("reservation.environment.time_limit")
    hard_stop_at = factory.SelfAttribute("reservation.ends_at")
    started_at = factory.LazyFunction(timezone.now)
    # Its environment ready at once: tests of preparing start attempts through attempt_start.
    clock_started_at = factory.SelfAttribute("started_at")
    configuration = factory.LazyAttribute(lambda o: environment_configuration_for(environment=o.environment))


def preparing(attempt: Attempt) -> Attempt:
    """The attempt as attempt_start leaves it: its environment not ready yet, its clock not started.

    Tests that prepare the workspace through a worker take this: the starting solution is scored (and
    the clock started) only for an attempt still being prepared, as every new attempt is.
    """
    Attempt.objects.filter(pk=attempt.pk).update(clock_started_at=None)
    return Attempt.objects.get(pk=attempt.pk)
