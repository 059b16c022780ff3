"""Onboarding a host: `manage.py workstation_add` registers it and prints or runs its set-up, and the workstation
page offers the same script to admins."""

from __future__ import annotations

import io
import stat
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from trials import services
from trials.models import Gpu, Workstation

pytestmark = pytest.mark.django_db


def add(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("workstation_add", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_registers_the_workstation_with_its_gpus_and_prints_a_script_bash_accepts() -> None:
    script, said = add(
        "gpu7", "--host", "gpu7.lab.internal", "--gpus", "4", "--gpu-model", "H100 80GB", "--ssh-user", "rebench",
        "--print-setup",
    )  # fmt: skip

    workstation = Workstation.objects.get(name="gpu7")
    assert (workstation.host, workstation.gpu_count, workstation.queue_name) == ("gpu7.lab.internal", 4, "ws.gpu7")
    assert Gpu.objects.filter(workstation=workstation).count() == 4
    assert "Registered gpu7 (4 × H100 80GB, queue ws.gpu7)" in said
    assert script.startswith("#!/bin/bash\n")
    assert "-Q ws.gpu7 -n gpu7@%H" in script
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    # An SSH host's key is recorded on the web host; the command says how.
    assert "ssh-keyscan -p 22 gpu7.lab.internal >> " in said


def test_without_a_setup_flag_it_registers_and_says_what_is_next() -> None:
    out, _ = add("gpu8", "--host", "gpu8.lab.internal", "--backend", "local")

    assert Workstation.objects.get(name="gpu8").backend == Workstation.Backend.LOCAL
    assert "--print-setup > setup.sh" in out


def test_a_registered_workstations_setup_is_printed_again_without_host() -> None:
    add("gpu9", "--host", "gpu9.lab.internal")

    script, said = add("gpu9", "--print-setup")

    assert "Registered" not in said
    assert "ws.gpu9" in script


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gpu1", "--host", "h", "--gpus", "-1"], "--gpus: GPU count can't be negative."),
        (["gpu1"], "--host is needed to register gpu1."),
        (["not a slug!", "--host", "h"], "NAME: Enter a valid “slug”"),
        (["gpu1", "--host", "h", "--ssh-port", "70000"], "--ssh-port: "),
        (["gpu1", "--host", "h", "--backend", "telnet"], "invalid choice: 'telnet'"),
        (["gpu1", "--host", "h", "--gpus", "many"], "invalid int value: 'many'"),
        (["gpu1", "--host", "h", "--print-setup", "--run-setup"], "not allowed with argument"),
        (["gpu1", "--host", "bad host; rm -rf /", "--print-setup"], "No set-up script for gpu1: The host"),
    ],
)
def test_bad_input_is_a_clear_error_naming_the_option(args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as info:
        add(*args)
    assert message in str(info.value)


def test_a_taken_name_is_refused_naming_it(workstation: Workstation) -> None:
    with pytest.raises(CommandError, match=r"NAME: A workstation named 'h100-a' exists already\."):
        add(workstation.name, "--host", "elsewhere")


def test_a_registered_workstation_without_a_setup_flag_is_told_how(workstation: Workstation) -> None:
    with pytest.raises(CommandError, match="--print-setup or --run-setup sets it up again"):
        add(workstation.name)


def test_run_setup_on_a_local_workstation_runs_the_script_here(tmp_path: Path, monkeypatch, settings) -> None:
    """Against a scratch root (REBENCH_SETUP_ROOT): the real script, run by the command, writing only under it."""
    monkeypatch.setenv("REBENCH_SETUP_ROOT", str(tmp_path))
    settings.CELERY_BROKER_URL = "redis://broker.internal:6379/0"

    out, _ = add("here", "--host", "localhost", "--backend", "local", "--run-setup")

    assert "==> The worker: rebench-worker.service, on the queue ws.here" in out
    env = tmp_path / "etc/rebench/worker.env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert 'CELERY_BROKER_URL="redis://broker.internal:6379/0"\n' in env.read_text()
    assert "-Q ws.here" in (tmp_path / "etc/systemd/system/rebench-worker.service").read_text()
    # The agent's token was issued and handed in: the one the site now knows is the one written there.
    written = (tmp_path / "etc/rebench/agent-token.env").read_text()
    token = written.removeprefix('WORKSTATION_AGENT_TOKEN="').removesuffix('"\n')
    workstation = Workstation.objects.get(name="here")
    assert workstation.agent_token_hash == services.workstation_agent_token_hash(token)


def test_a_failing_setup_is_a_command_error(tmp_path: Path, monkeypatch) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setenv("REBENCH_SETUP_ROOT", str(not_a_folder))

    with pytest.raises(CommandError, match=r"The set-up script failed here \(exit 1\)"):
        add("here", "--host", "localhost", "--backend", "local", "--run-setup")


def test_run_setup_on_an_ssh_host_that_does_not_answer_says_so(settings, tmp_path: Path) -> None:
    settings.TERMINAL_SSH_KNOWN_HOSTS = str(tmp_path / "known_hosts")

    with pytest.raises(CommandError, match="gave no SSH host key"):
        add("far", "--host", "127.0.0.1", "--ssh-port", "1", "--run-setup")

    assert not (tmp_path / "known_hosts").exists()


def test_admin_downloads_the_setup_script_from_the_workstation_page(admin_user: User, workstation: Workstation) -> None:
    client = logged_in(admin_user)
    page = client.get(f"/workstations/{workstation.pk}/").content.decode()
    assert f'href="/workstations/{workstation.pk}/setup.sh"' in page

    response = client.get(f"/workstations/{workstation.pk}/setup.sh")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/x-shellscript; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="rebench-setup-h100-a.sh"'
    assert response["Cache-Control"] == "no-store"
    script = response.content.decode()
    out, _ = add(workstation.name, "--print-setup")
    assert script == out


def test_an_admin_issues_an_agent_token_on_the_page_shown_once_and_revokes_it(
    admin_user: User, workstation: Workstation
) -> None:
    client = logged_in(admin_user)
    assert "Agent token: <strong>none</strong>" in client.get(f"/workstations/{workstation.pk}/").content.decode()

    response = client.post(f"/workstations/{workstation.pk}/agent-token/", {"action": "issue"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    token = page.split("<code data-token>")[1].split("</code>")[0]
    assert f"REBENCH_AGENT_TOKEN={token} bash rebench-setup-h100-a.sh" in page
    workstation.refresh_from_db()
    assert workstation.agent_token_hash == services.workstation_agent_token_hash(token)
    assert token not in client.get(f"/workstations/{workstation.pk}/").content.decode()  # never shown again

    client.post(f"/workstations/{workstation.pk}/agent-token/", {"action": "revoke"})
    workstation.refresh_from_db()
    assert workstation.agent_token_hash == ""
    assert workstation.agent_token_issued_at is None


def test_an_expert_cannot_issue_an_agent_token(expert: User, workstation: Workstation) -> None:
    response = logged_in(expert).post(f"/workstations/{workstation.pk}/agent-token/", {"action": "issue"})

    assert response.status_code == 403
    workstation.refresh_from_db()
    assert workstation.agent_token_hash == ""


def test_an_expert_cannot_download_a_setup_script(expert: User, workstation: Workstation) -> None:
    response = logged_in(expert).get(f"/workstations/{workstation.pk}/setup.sh")

    assert response.status_code == 403


def test_a_workstation_whose_values_cannot_go_into_a_script_gets_a_message_not_a_500(
    admin_user: User, workstation: Workstation
) -> None:
    Workstation.objects.filter(pk=workstation.pk).update(queue_name="ws h100")

    response = logged_in(admin_user).get(f"/workstations/{workstation.pk}/setup.sh", follow=True)

    assert response.status_code == 200
    assert "No set-up script for h100-a: The queue &#x27;ws h100&#x27;" in response.content.decode()


def test_a_workstation_registered_on_the_page_is_pointed_at_its_setup_script(admin_user: User) -> None:
    form = {"name": "gpu5", "host": "gpu5.lab.internal", "gpu_count": 2, "gpu_model": "H100", "backend": "ssh",
            "ssh_port": 22, "ssh_user": "rebench", "queue_name": ""}  # fmt: skip

    response = logged_in(admin_user).post("/workstations/", form, follow=True)

    page = response.content.decode()
    assert "Registered gpu5; run its set-up script as root on gpu5.lab.internal." in page
    workstation = Workstation.objects.get(name="gpu5")
    assert f'href="/workstations/{workstation.pk}/setup.sh"' in page
