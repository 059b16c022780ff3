"""An admin forces a password reset from the Django admin: the password stops working, sessions end, a link goes out."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import Client

from tests import factories

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-new-and-longer-passphrase"


class FailingBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("mail server down")


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = "https://trials.example.org"


@pytest.fixture
def superuser(db):
    return factories.UserFactory.create(username="boss", is_staff=True, is_superuser=True)


def _client_of(username: str, address: str = "10.3.0.1") -> Client:
    client = Client(REMOTE_ADDR=address)
    assert client.post("/accounts/login/", {"username": username, "password": factories.PASSWORD}).status_code == 302
    return client


def _reset_url(user) -> str:
    return f"/admin/auth/user/{user.pk}/force-password-reset/"


def test_anonymous_visitors_and_experts_are_sent_to_the_admin_login(client, expert) -> None:
    for visitor in (client, _client_of("ada")):
        response = visitor.get(_reset_url(expert))
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
        assert visitor.post(_reset_url(expert), {"confirmed": "yes"}).status_code == 302
    expert.refresh_from_db()
    assert expert.has_usable_password()


def test_staff_without_the_right_to_change_users_are_refused(expert) -> None:
    factories.admin(username="root")  # the site's admin role: staff, but no Django permissions
    staff = _client_of("root")
    assert staff.get(_reset_url(expert)).status_code == 403
    assert staff.post(_reset_url(expert), {"confirmed": "yes"}).status_code == 403
    expert.refresh_from_db()
    assert expert.has_usable_password()


def test_the_user_page_has_the_button_and_it_asks_before_resetting(superuser, expert) -> None:
    admin = _client_of("boss")
    page = admin.get(f"/admin/auth/user/{expert.pk}/change/")
    assert page.status_code == 200
    assert _reset_url(expert).encode() in page.content

    confirm = admin.get(_reset_url(expert))
    assert confirm.status_code == 200
    assert b"Yes, reset 1 password" in confirm.content
    expert.refresh_from_db()
    assert expert.has_usable_password()


def test_a_forced_reset_ends_the_users_sessions_and_mails_a_link_that_sets_a_new_password(superuser, expert) -> None:
    admin = _client_of("boss")
    experts_session = _client_of("ada", address="10.3.0.2")

    response = admin.post(_reset_url(expert), {"confirmed": "yes"})
    assert response.status_code == 200
    assert b"mailed to ada@example.test" in response.content
    assert b"forced-reset-link" not in response.content  # mailed: the page doesn't show it

    expert.refresh_from_db()
    assert not expert.has_usable_password()
    assert experts_session.get("/accounts/password/change/").status_code == 302  # logged out
    refused = Client().post("/accounts/login/", {"username": "ada", "password": factories.PASSWORD})
    assert refused.status_code == 200

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ada@example.test"]
    link = re.search(r"https://trials\.example\.org(\S+)", str(mail.outbox[0].body)).group(1)
    client = Client()
    form = client.get(link, follow=True)
    assert b"Choose a new password" in form.content
    client.post(form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    expert.refresh_from_db()
    assert expert.check_password(NEW_PASSWORD)
    assert admin.get("/admin/").status_code == 200  # the admin's own session is untouched


def test_without_an_address_the_admin_gets_the_link_to_hand_over(superuser) -> None:
    user = factories.expert(username="nomail", email="")
    response = _client_of("boss").post(_reset_url(user), {"confirmed": "yes"})
    assert response.status_code == 200
    assert b"the account has no e-mail address" in response.content
    link = re.search(rb'value="https://trials\.example\.org([^"]+)"', response.content).group(1).decode()
    assert b"Choose a new password" in Client().get(link, follow=True).content
    assert mail.outbox == []


def test_when_the_mail_fails_the_admin_gets_the_link_not_an_error(settings, superuser, expert) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.FailingBackend"
    response = _client_of("boss").post(_reset_url(expert), {"confirmed": "yes"})
    assert response.status_code == 200
    assert b"sending the mail failed (ConnectionRefusedError: mail server down)" in response.content
    assert b"forced-reset-link" in response.content
    expert.refresh_from_db()
    assert not expert.has_usable_password()


def test_the_changelist_action_resets_many_after_confirming_and_never_the_admin_themself(
    superuser, expert, reviewer
) -> None:
    admin = _client_of("boss")
    ids = [str(expert.pk), str(reviewer.pk), str(superuser.pk)]
    data = {"action": "force_password_reset_action", "_selected_action": ids}

    confirm = admin.post("/admin/auth/user/", data)
    assert confirm.status_code == 200
    assert b"Yes, reset 3 passwords" in confirm.content
    assert b"(you: left as it is)" in confirm.content
    expert.refresh_from_db()
    assert expert.has_usable_password()

    done = admin.post("/admin/auth/user/", {**data, "confirmed": "yes"})
    assert done.status_code == 200
    assert b"Your own account was left as it is" in done.content
    users = get_user_model().objects.in_bulk([expert.pk, reviewer.pk, superuser.pk])
    assert not users[expert.pk].has_usable_password()
    assert not users[reviewer.pk].has_usable_password()
    assert users[superuser.pk].has_usable_password()
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@example.test", "rita@example.test"]
    assert admin.get("/admin/").status_code == 200


@pytest.mark.parametrize("object_id", ["999999", "not-a-number"])
def test_an_unknown_user_is_a_404(superuser, object_id) -> None:
    response = _client_of("boss").get(f"/admin/auth/user/{object_id}/force-password-reset/")
    assert response.status_code == 404
