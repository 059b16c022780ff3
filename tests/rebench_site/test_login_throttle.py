"""Login throttling (django-axes): a username and an address are each locked after repeated wrong passwords."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone

from tests import factories

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
LIMIT = 5
WINDOW = timedelta(minutes=15)


@pytest.fixture(autouse=True)
def _throttle(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = WINDOW
    settings.AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]


def _login(client: Client, username: str, password: str, address: str = "10.0.0.1", **extra: Any):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address, **extra)


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _move_clock_past_the_window() -> None:
    """As if the window had passed since every failure so far (axes reads attempt_time against now)."""
    AccessAttempt.objects.update(attempt_time=timezone.now() - WINDOW - timedelta(minutes=1))


def test_the_fifth_wrong_password_locks_the_account_and_the_right_one_is_refused_until_the_window_passes(
    client, expert
) -> None:
    for _ in range(LIMIT - 1):
        response = _login(client, "ada", "wrong-password")
        assert response.status_code == 200
        assert b"Please enter a correct username and password" in response.content

    locked = _login(client, "ada", "wrong-password")
    assert locked.status_code == 429
    assert b"Too many wrong passwords" in locked.content
    assert b"This account, and your network address, are" in locked.content
    assert 0 < int(locked["Retry-After"]) <= WINDOW.total_seconds()

    refused = _login(client, "ada", factories.PASSWORD)
    assert refused.status_code == 429
    assert not _logged_in(client)
    # A try during the lock isn't counted: the lock still ends when the page said.
    assert AccessAttempt.objects.get(username="ada").failures_since_start == LIMIT

    _move_clock_past_the_window()
    allowed = _login(client, "ada", factories.PASSWORD)
    assert allowed.status_code == 302
    assert _logged_in(client)


def test_a_locked_account_is_locked_from_every_address(client, expert) -> None:
    for n in range(LIMIT):
        _login(Client(), "ada", "wrong-password", address=f"10.0.1.{n}")

    refused = _login(client, "ada", factories.PASSWORD, address="10.0.2.1")
    assert refused.status_code == 429
    assert b"This account is" in refused.content
    assert not _logged_in(client)
    # Another account from that address is not affected.
    factories.expert(username="grace")
    assert _login(Client(), "grace", factories.PASSWORD, address="10.0.2.1").status_code == 302


def test_one_address_trying_many_usernames_is_locked_and_other_addresses_are_not(expert) -> None:
    attacker = Client()
    for n in range(LIMIT):
        _login(attacker, f"guess{n}", "wrong-password", address="10.0.3.3")

    refused = _login(attacker, "ada", factories.PASSWORD, address="10.0.3.3")
    assert refused.status_code == 429
    assert b"Your network address is" in refused.content
    assert not _logged_in(attacker)

    elsewhere = Client()
    assert _login(elsewhere, "ada", factories.PASSWORD, address="10.0.4.4").status_code == 302
    assert _logged_in(elsewhere)


def test_failures_are_forgotten_once_the_window_passes_without_one(client, expert) -> None:
    for _ in range(LIMIT - 1):
        _login(client, "ada", "wrong-password")
    _move_clock_past_the_window()
    for _ in range(LIMIT - 1):
        assert _login(client, "ada", "wrong-password").status_code == 200
    assert _login(client, "ada", factories.PASSWORD).status_code == 302


def test_the_django_admin_login_is_throttled_with_the_same_lock(client) -> None:
    factories.UserFactory.create(username="boss", is_staff=True, is_superuser=True)
    for _ in range(LIMIT):
        client.post("/admin/login/", {"username": "boss", "password": "wrong-password"}, REMOTE_ADDR="10.0.5.5")

    refused = client.post("/admin/login/", {"username": "boss", "password": factories.PASSWORD}, REMOTE_ADDR="10.0.5.6")
    assert refused.status_code == 429
    assert b"Too many wrong passwords" in refused.content
    assert not _logged_in(client)


def test_a_script_gets_the_lockout_as_json(client, expert) -> None:
    for _ in range(LIMIT - 1):
        _login(client, "ada", "wrong-password")
    response = _login(client, "ada", "wrong-password", HTTP_ACCEPT="application/json")
    assert response.status_code == 429
    body = response.json()
    assert body["detail"].startswith("Too many failed logins")
    assert set(body["locked"]) == {"username", "address"}
    assert 0 < body["retry_after_seconds"] <= WINDOW.total_seconds()


def test_the_failed_tries_keep_no_password(client, expert) -> None:
    _login(client, "ada", "hunter2-secret")
    attempt = AccessAttempt.objects.get(username="ada")
    assert "hunter2-secret" not in attempt.post_data


def test_the_api_takes_no_password_so_the_login_page_is_the_only_place_to_guess_one(client, expert) -> None:
    import base64

    basic = base64.b64encode(f"ada:{factories.PASSWORD}".encode()).decode()
    response = client.get("/api/reservations/", HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code in (401, 403)


@pytest.mark.parametrize(
    "data",
    [
        {"username": "a" * 300, "password": "x"},
        {"username": "ada", "password": "p" * 5000},
        {"username": "", "password": ""},
        {"username": "ada"},
        {"username": "ad\u00e4\U0001f600", "password": "x"},
    ],
    ids=["long-username", "long-password", "empty", "no-password", "unicode"],
)
def test_malformed_logins_get_the_form_back_not_an_error(client, expert, data) -> None:
    for path in (LOGIN, "/admin/login/"):
        response = client.post(path, data, REMOTE_ADDR="10.0.9.9")
        assert response.status_code == 200, path
        assert b"errorlist" in response.content or b"errornote" in response.content, path  # ours, the admin's
