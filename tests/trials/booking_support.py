"""What the booking rules tests book with (times, availability, roles, cancelling, attempt limit): now, a slot tomorrow,
and a booking that must be refused.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from environments.models import Environment
from rebench_site.errors import ServiceError
from trials import services
from trials.models import Reservation, Workstation


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
