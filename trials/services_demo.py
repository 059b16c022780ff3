"""Seeding the demo: users for each role, the local workstation and the seven environments."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from environments.services import environment_sync_registry
from rebench_site import roles
from trials.models import Workstation


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str


DEMO_LOGINS = (
    DemoLogin("admin", "rebench-admin", roles.ADMIN),
    DemoLogin("ada", "rebench-expert", roles.EXPERT),
    DemoLogin("grace", "rebench-expert", roles.EXPERT),
    DemoLogin("rita", "rebench-reviewer", roles.REVIEWER),
)


@transaction.atomic
def demo_seed() -> list[DemoLogin]:
    """Idempotent: running it again resets the demo passwords and leaves other data alone."""
    environment_sync_registry()
    User = get_user_model()
    for login in DEMO_LOGINS:
        user, _ = User.objects.get_or_create(username=login.username, defaults={"email": f"{login.username}@demo.test"})
        user.set_password(login.password)
        if login.role == roles.ADMIN:
            user.is_staff = True
            user.is_superuser = True
        user.save()
        user.groups.add(Group.objects.get_or_create(name=login.role)[0])
    Workstation.objects.get_or_create(
        name="local",
        defaults={
            "host": "localhost",
            "backend": Workstation.Backend.LOCAL,
            "queue_name": settings.LOCAL_WORKSTATION_QUEUE,
            # This machine has no GPU; the demo declares some so every environment can be booked.
            "gpu_count": settings.LOCAL_WORKSTATION_GPU_COUNT,
            "gpu_model": settings.LOCAL_WORKSTATION_GPU_MODEL,
        },
    )
    return list(DEMO_LOGINS)
