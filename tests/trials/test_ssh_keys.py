"""Experts' SSH keys: the page, the API and the short-lived key for one attempt; what the workstation is sent."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tests import factories
from trials import selectors, services
from trials.models import Attempt, Pause, SSHKey

pytestmark = pytest.mark.django_db

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl laptop"


def expert_client(user: object) -> Client:
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    return client


def api_client(user: object) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)  # type: ignore[arg-type]
    return client


def test_an_expert_adds_a_key_on_the_page_and_sees_its_fingerprint_as_ssh_keygen_prints_it(tmp_path: Path) -> None:
    expert = factories.expert()
    response = expert_client(expert).post(reverse("trials:ssh-keys"), {"name": "", "public_key": ED25519})
    assert response.status_code == 302
    key = SSHKey.objects.get(user=expert)
    assert key.name == "laptop"  # the key's comment when no name is given
    assert key.public_key == ED25519.rsplit(" ", 1)[0]
    (tmp_path / "k.pub").write_text(ED25519)
    printed = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True, check=True)
    assert key.fingerprint in printed.stdout
    assert key.fingerprint in expert_client(expert).get(reverse("trials:ssh-keys")).content.decode()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "Paste a public key"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "not accepted"),
        ('command="sh" ' + ED25519, "no options"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
        ("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQAB", "its data is"),
        ("ssh-ed25519 !!!", "Not an OpenSSH public key"),
        (ED25519 + "\nssh-ed25519 AAAA", "one line"),
    ],
)
def test_a_bad_key_is_refused_with_the_field_named_on_the_page_and_in_the_api(text: str, why: str) -> None:
    expert = factories.expert()
    page = expert_client(expert).post(reverse("trials:ssh-keys"), {"public_key": text})
    assert page.status_code == 400
    assert why in page.content.decode()
    api = api_client(expert).post("/api/ssh-keys/", {"public_key": text}, format="json")
    assert api.status_code == 400
    assert "public_key" in api.json()
    assert not SSHKey.objects.exists()


def test_the_same_key_twice_is_refused() -> None:
    expert = factories.expert()
    services.ssh_key_add(user=expert, public_key=ED25519)
    response = api_client(expert).post("/api/ssh-keys/", {"public_key": ED25519}, format="json")
    assert response.status_code == 400
    assert "already" in response.json()["public_key"][0]


def test_the_api_lists_and_removes_only_the_callers_keys_and_refuses_reviewers() -> None:
    expert, other = factories.expert(), factories.expert()
    mine = services.ssh_key_add(user=expert, public_key=ED25519)
    assert [k["id"] for k in api_client(expert).get("/api/ssh-keys/").json()["results"]] == [mine.pk]
    assert api_client(other).get("/api/ssh-keys/").json()["results"] == []
    assert api_client(other).delete(f"/api/ssh-keys/{mine.pk}/").status_code == 404
    assert api_client(factories.reviewer()).get("/api/ssh-keys/").status_code == 403
    assert api_client(expert).delete(f"/api/ssh-keys/{mine.pk}/").status_code == 204
    assert not SSHKey.objects.exists()


def test_someone_elses_key_cant_be_removed_on_the_page() -> None:
    key = services.ssh_key_add(user=factories.expert(), public_key=ED25519)
    response = expert_client(factories.expert()).post(reverse("trials:ssh-key-delete", args=[key.pk]))
    assert response.status_code == 404
    assert SSHKey.objects.filter(pk=key.pk).exists()


def test_the_workstation_is_sent_the_keys_only_while_the_attempt_runs_unpaused() -> None:
    attempt = factories.AttemptFactory.create()
    assert attempt.user is not None
    services.ssh_key_add(user=attempt.user, public_key=ED25519)
    mine, _private = services.ssh_key_create_for_attempt(attempt=attempt, by=attempt.user)
    # The same expert's attempt of yesterday (one expert's slots never overlap).
    yesterday = timezone.now() - timedelta(days=1)
    other_attempt = factories.AttemptFactory.create(
        reservation__expert=attempt.user, reservation__starts_at=yesterday, started_at=yesterday
    )
    control = selectors.attempt_sandbox_control(attempt.pk)
    assert control["ssh_keys"] == [ED25519.rsplit(" ", 1)[0], mine.public_key]
    # A short-lived key opens its own attempt only.
    assert selectors.attempt_ssh_keys(other_attempt) == [ED25519.rsplit(" ", 1)[0]]
    services.attempt_pause(attempt=attempt, by=attempt.user, reason=Pause.Reason.BREAK)
    assert selectors.attempt_sandbox_control(attempt.pk)["ssh_keys"] == []
    services.attempt_resume(attempt=attempt, by=attempt.user)
    services.attempt_submit(attempt=Attempt.objects.get(pk=attempt.pk), by=attempt.user)
    assert selectors.attempt_sandbox_control(attempt.pk)["ssh_keys"] == []


def test_an_attempts_short_lived_key_is_shown_once_to_its_expert_and_refused_to_others() -> None:
    attempt = factories.AttemptFactory.create()
    response = api_client(attempt.user).post(f"/api/attempts/{attempt.pk}/ssh-key/")
    assert response.status_code == 201
    body = response.json()
    assert body["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert body["key"]["attempt"] == attempt.pk
    assert "PRIVATE" not in SSHKey.objects.get(pk=body["key"]["id"]).public_key
    assert api_client(factories.expert()).post(f"/api/attempts/{attempt.pk}/ssh-key/").status_code == 404
    assert api_client(factories.admin()).post(f"/api/attempts/{attempt.pk}/ssh-key/").status_code == 403
    page = expert_client(attempt.user).post(reverse("trials:attempt-ssh-key", args=[attempt.pk]))
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    assert "BEGIN OPENSSH PRIVATE KEY" in page.content.decode()


def test_an_ended_attempt_gets_no_short_lived_key() -> None:
    attempt = factories.AttemptFactory.create()
    assert attempt.user is not None
    services.attempt_submit(attempt=attempt, by=attempt.user)
    response = api_client(attempt.user).post(f"/api/attempts/{attempt.pk}/ssh-key/")
    assert response.status_code == 400
    assert "attempt" in response.json()


def test_the_attempt_page_shows_its_expert_the_ssh_command_with_the_attempts_login() -> None:
    attempt = factories.AttemptFactory.create()
    page = expert_client(attempt.user).get(reverse("trials:attempt", args=[attempt.pk])).content.decode()
    ssh = selectors.attempt_ssh_command(attempt)
    assert ssh["command"] in page
    assert ssh["login"].endswith(f"{attempt.pk}")
    # VS Code's block: a second host reached through the tunnel, whose forwarding opens inside the sandbox.
    tunnel = f"ProxyCommand ssh -T {ssh['login']}@{ssh['host']} rebench-tunnel"
    assert tunnel in ssh["config"]
    assert tunnel in page
