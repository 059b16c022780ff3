"""Services refuse malformed input with a ServiceError naming the field, whoever calls them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from rebench_site.errors import ServiceError
from tests import factories
from trials import services
from trials.models import Pause, Reservation, Workstation

pytestmark = pytest.mark.django_db


def tomorrow_at(hour: int) -> datetime:
    return (timezone.now() + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)


def test_a_naive_end_time_is_refused_naming_ends_at(expert, env_cumsum, workstation) -> None:
    start = tomorrow_at(9)
    with pytest.raises(ServiceError) as refused:
        services.reservation_create(
            expert=expert,
            environment=env_cumsum,
            workstation=workstation,
            starts_at=start,
            ends_at=(start + timedelta(hours=9)).replace(tzinfo=None),
            created_by=expert,
        )
    assert refused.value.field == "ends_at"
    assert Reservation.objects.count() == 0


def test_a_slot_longer_than_the_maximum_is_refused(expert, env_cumsum, workstation, settings) -> None:
    start = tomorrow_at(9)
    with pytest.raises(ServiceError) as refused:
        services.reservation_create(
            expert=expert,
            environment=env_cumsum,
            workstation=workstation,
            starts_at=start,
            ends_at=start + settings.RESERVATION_MAX_LENGTH + timedelta(minutes=1),
            created_by=expert,
        )
    assert refused.value.field == "ends_at"
    assert Reservation.objects.count() == 0


@pytest.mark.parametrize("field", ["started_at", "ended_at"])
def test_a_naive_time_in_a_pause_after_the_fact_is_refused_naming_it(admin_user, field: str) -> None:
    attempt = factories.AttemptFactory.create(started_at=timezone.now() - timedelta(hours=2))
    times: dict[str, Any] = {
        "started_at": timezone.now() - timedelta(hours=1),
        "ended_at": timezone.now() - timedelta(minutes=30),
    }
    times[field] = times[field].replace(tzinfo=None)
    with pytest.raises(ServiceError) as refused:
        services.attempt_add_pause(attempt=attempt, by=admin_user, **times)
    assert refused.value.field == field
    assert Pause.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"ssh_port": 70000}, "ssh_port"), ({"name": "has spaces!"}, "name"), ({"backend": "telnet"}, "backend")],
)
def test_registering_a_malformed_workstation_is_refused_naming_the_field(
    db, overrides: dict[str, object], field: str
) -> None:
    args: dict[str, Any] = {"name": "h100-c", "host": "h100-c.lab", "gpu_count": 4, "gpu_model": "H100", **overrides}
    with pytest.raises(ServiceError) as refused:
        services.workstation_register(**args)
    assert refused.value.field == field
    assert Workstation.objects.count() == 0
