"""Password change (every role) and password reset by e-mail; a new password ends the user's other sessions."""

from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from tests import factories

pytestmark = pytest.mark.django_db

CHANGE = "/accounts/password/change/"
RESET = "/accounts/password/reset/"
NEW_PASSWORD = "a-new-and-longer-passphrase"


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = "https://trials.example.org"
    settings.AXES_FAILURE_LIMIT = 5


def _logged_in_client(username: str, password: str = factories.PASSWORD, address: str = "10.1.0.1") -> Client:
    client = Client(REMOTE_ADDR=address)
    response = client.post("/accounts/login/", {"username": username, "password": password})
    assert response.status_code == 302, response.content[:300]
    return client


def _still_logged_in(client: Client) -> bool:
    response = client.get(CHANGE)
    return response.status_code == 200


def _change(client: Client, old: str = factories.PASSWORD, new: str = NEW_PASSWORD):
    return client.post(CHANGE, {"old_password": old, "new_password1": new, "new_password2": new})


# --- Password change ---


def test_anonymous_visitors_are_sent_to_log_in_before_changing_a_password(client) -> None:
    response = client.get(CHANGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert client.post(CHANGE, {"old_password": "x"}).status_code == 302


@pytest.mark.parametrize("make", [factories.expert, factories.reviewer, factories.admin])
def test_every_role_finds_change_password_in_the_account_area_and_changes_it(make) -> None:
    user = make(username="someone")
    client = _logged_in_client("someone")
    page = client.get(CHANGE)
    assert page.status_code == 200
    assert b'id="change-password"' in page.content  # the link beside Log out, on every page
    assert b"Change password" in page.content

    response = _change(client)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/change/done/"
    assert client.get(response["Location"]).status_code == 200
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert _still_logged_in(client)


def test_changing_the_password_logs_out_every_other_session_and_keeps_this_one(expert) -> None:
    laptop = _logged_in_client("ada", address="10.1.0.1")
    phone = _logged_in_client("ada", address="10.1.0.2")
    assert _still_logged_in(laptop)
    assert _still_logged_in(phone)

    assert _change(laptop).status_code == 302

    assert _still_logged_in(laptop)
    response = phone.get(CHANGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    # And the old password no longer logs in; the new one does.
    assert Client().post("/accounts/login/", {"username": "ada", "password": factories.PASSWORD}).status_code == 200
    _logged_in_client("ada", NEW_PASSWORD)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"old_password": "not-it", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, b"incorrectly"),
        ({"old_password": factories.PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": "other"}, b"didn"),
        ({"old_password": factories.PASSWORD, "new_password1": "short", "new_password2": "short"}, b"too short"),
        ({"old_password": factories.PASSWORD, "new_password1": "password", "new_password2": "password"}, b"too common"),
        (
            {"old_password": factories.PASSWORD, "new_password1": "83920174", "new_password2": "83920174"},
            b"entirely numeric",
        ),
        ({}, b"This field is required"),
    ],
)
def test_a_refused_password_change_says_why_and_changes_nothing(expert, data, message) -> None:
    client = _logged_in_client("ada")
    response = client.post(CHANGE, data)
    assert response.status_code == 200
    assert message in response.content
    expert.refresh_from_db()
    assert expert.check_password(factories.PASSWORD)


def test_guessing_the_old_password_counts_towards_the_login_lockout(expert) -> None:
    client = _logged_in_client("ada")
    for _ in range(4):
        assert _change(client, old="a-guess").status_code == 200
    locked = _change(client, old="a-guess")
    assert locked.status_code == 429
    assert b"Too many wrong passwords" in locked.content
    # Even the right old password is refused while the lock lasts.
    assert _change(client).status_code == 429
    expert.refresh_from_db()
    assert expert.check_password(factories.PASSWORD)
    assert "a-guess" not in AccessAttempt.objects.get(username="ada").post_data


def test_the_admin_change_password_link_comes_to_the_same_page(client) -> None:
    response = client.get("/admin/password_change/")
    assert response.status_code == 302
    assert response["Location"] == CHANGE


# --- Password reset by e-mail ---


def _reset_link() -> str:
    assert len(mail.outbox) == 1
    match = re.search(
        r"https://trials\.example\.org(/accounts/password/reset/[^/\s]+/[^/\s]+/)", str(mail.outbox[0].body)
    )
    assert match, mail.outbox[0].body
    return match.group(1)


def test_the_login_page_links_to_the_reset_page_which_anyone_can_open(client) -> None:
    assert b'href="/accounts/password/reset/"' in client.get("/accounts/login/").content
    page = client.get(RESET)
    assert page.status_code == 200
    assert b"Reset your password" in page.content


def test_a_reset_mail_leads_to_a_new_password_that_ends_every_session(expert) -> None:
    other_session = _logged_in_client("ada", address="10.1.0.9")
    client = Client()
    response = client.post(RESET, {"email": "ADA@example.test"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/reset/sent/"
    assert mail.outbox[0].to == ["ada@example.test"]
    assert "reset your password" in mail.outbox[0].subject
    link = _reset_link()  # on SITE_URL, not on whatever Host the request named

    form = client.get(link, follow=True)
    assert form.status_code == 200
    assert b"Choose a new password" in form.content
    done = client.post(form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302
    assert done["Location"] == "/accounts/password/reset/complete/"
    expert.refresh_from_db()
    assert expert.check_password(NEW_PASSWORD)
    assert not _still_logged_in(other_session)
    # The link works once.
    again = Client().get(link, follow=True)
    assert b"reset-link-invalid" in again.content


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client) -> None:
    response = client.post(RESET, {"email": "nobody@example.test"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/reset/sent/"
    assert mail.outbox == []


@pytest.mark.parametrize("email", ["not-an-address", "", "x" * 300 + "@example.test"])
def test_a_malformed_address_is_a_form_error(client, email) -> None:
    response = client.post(RESET, {"email": email})
    assert response.status_code == 200
    assert b"errorlist" in response.content
    assert mail.outbox == []


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/password/reset/MQ/not-a-token/",
        "/accounts/password/reset/!!!/abc-def/",
        "/accounts/password/reset/ZZZZZZZZZZZZZZZZ/set-password/",
    ],
)
def test_a_broken_reset_link_says_so(client, expert, path) -> None:
    response = client.get(path, follow=True)
    assert response.status_code == 200
    assert b"reset-link-invalid" in response.content


def test_an_account_whose_reset_an_admin_forced_can_ask_for_a_fresh_link(client, expert) -> None:
    expert.set_unusable_password()
    expert.save()
    client.post(RESET, {"email": "ada@example.test"})
    assert len(mail.outbox) == 1


def test_an_inactive_account_gets_no_mail(client, expert) -> None:
    get_user_model().objects.filter(pk=expert.pk).update(is_active=False)
    client.post(RESET, {"email": "ada@example.test"})
    assert mail.outbox == []


def test_setting_a_new_password_by_mail_lifts_the_lock_on_the_account(expert) -> None:
    for n in range(5):
        Client().post("/accounts/login/", {"username": "ada", "password": "wrong"}, REMOTE_ADDR=f"10.2.0.{n}")
    assert Client().post("/accounts/login/", {"username": "ada", "password": factories.PASSWORD}).status_code == 429

    client = Client()
    client.post(RESET, {"email": "ada@example.test"})
    form = client.get(_reset_link(), follow=True)
    client.post(form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    _logged_in_client("ada", NEW_PASSWORD, address="10.2.1.1")
