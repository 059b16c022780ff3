"""The Django admin as admins meet it: every model they look up is there, titled and labelled in words."""

from __future__ import annotations

import pytest
from django.test import Client

from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/admin/review/completion/",
        "/admin/review/reviewqueue/",
        "/admin/review/label/",
        "/admin/trials/reservation/",
        "/admin/environments/environmentconfiguration/",
        "/admin/trials/workstation/add/",
    ],
)
def test_a_staff_admin_opens_each_page_and_a_reviewer_cannot(path: str) -> None:
    admin = Client()
    admin.force_login(factories.admin(is_superuser=True))  # as the demo's admin is
    assert admin.get(path).status_code == 200
    reviewer = Client()
    reviewer.force_login(factories.reviewer())
    assert reviewer.get(path).status_code == 302  # to the admin's login: not staff


def test_reservations_are_titled_by_who_what_where_and_when_and_fields_by_words(workstation) -> None:
    reservation = factories.ReservationFactory.create(workstation=workstation)
    title = str(reservation)
    assert reservation.expert.username in title
    assert reservation.environment.slug in title
    assert workstation.name in title
    admin = Client()
    admin.force_login(factories.admin(is_superuser=True))  # as the demo's admin is
    form = admin.get("/admin/trials/workstation/add/").content.decode()
    assert "GPU count" in form
    assert "SSH port" in form
    assert "Gpu count" not in form
