"""A hostile expert at the reservation controls: moving their own slot's end, bouncing an admin off-site."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from environments.models import Environment
from tests import factories
from trials.models import Reservation, Workstation

pytestmark = pytest.mark.django_db


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_expert_posting_a_later_end_for_their_own_slot_is_refused_and_the_slot_keeps_its_end(
    expert: User, env_cumsum: Environment, workstation: Workstation
) -> None:
    mine = factories.ReservationFactory.create(expert=expert, environment=env_cumsum, workstation=workstation)
    later = timezone.localtime(mine.ends_at + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M")
    response = logged_in(expert).post(reverse("trials:reservation-end", args=[mine.pk]), {"ends_at": later})
    assert response.status_code == 403
    assert Reservation.objects.get(pk=mine.pk).ends_at == mine.ends_at
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("target", ["https://evil.example/phish", "//evil.example/phish", "http:evil.example"])
def test_a_next_pointing_off_site_sends_the_canceller_home_not_away(
    expert: User, env_cumsum: Environment, workstation: Workstation, target: str
) -> None:
    upcoming = factories.ReservationFactory.create(
        expert=expert, environment=env_cumsum, workstation=workstation, starts_at=timezone.now() + timedelta(days=1)
    )
    response = logged_in(expert).post(reverse("trials:reservation-cancel", args=[upcoming.pk]), {"next": target})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
