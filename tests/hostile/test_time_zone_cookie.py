"""A hostile `tz` cookie (the browser's zone, which the client may set to anything): the page loads on
the site's zone, never a 500 and never a file read from a path the cookie names."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from tests import factories

pytestmark = pytest.mark.django_db

HOSTILE = {
    "a path out of the zone folder": "../../etc/passwd",
    "an absolute path": "/etc/passwd",
    "an overlong value": "A" * 5000,
    "a NUL after a real zone": "Europe/Berlin\x00",
    "the server's own zone file": "localtime",
    "a real zone in the wrong case": "europe/berlin",
    "a zone file's folder": "Europe",
}


def raw_cookie_get(client: Client, path: str, tz: str):
    """GET with the Cookie header as sent, not quoted by the test client's cookie jar."""
    session = client.cookies.get(settings.SESSION_COOKIE_NAME)
    header = f"tz={tz}" + (f"; {settings.SESSION_COOKIE_NAME}={session.value}" if session else "")
    return client.get(path, headers={"cookie": header})


@pytest.mark.parametrize("tz", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_zone_cookie_gives_the_page_in_the_sites_zone(tz: str) -> None:
    client = Client()
    client.force_login(factories.expert(username="mallory"))
    response = raw_cookie_get(client, "/my/", tz)
    assert response.status_code == 200
    assert response.context["time_zone"] == settings.TIME_ZONE


@pytest.mark.parametrize("tz", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_zone_cookie_before_logging_in_gives_the_login_page(tz: str) -> None:
    response = raw_cookie_get(Client(), "/accounts/login/", tz)
    assert response.status_code == 200
    assert response.context["time_zone"] == settings.TIME_ZONE


@pytest.mark.parametrize("tz", ["../../etc/passwd", "A" * 5000, "Europe/Berlin\x00", "localtime"])
def test_a_hostile_zone_cookie_through_the_cookie_jar_gives_the_page_in_the_sites_zone(tz: str) -> None:
    client = Client()
    client.force_login(factories.expert(username="mallory"))
    client.cookies["tz"] = tz
    response = client.get("/my/")
    assert response.status_code == 200
    assert response.context["time_zone"] == settings.TIME_ZONE
