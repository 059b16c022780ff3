"""The `task` command in the shell, run as a real process against a live server with a real attempt token."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests import factories
from trials import services
from trials.models import Attempt, AttemptToken, Note, Pause

SOURCE = Path(__file__).resolve().parents[2] / "workstation" / "tools" / "task.py"


def installed_task(tmp_path: Path) -> str:
    """Copied out as the backends install it: run from trials/, `selectors.py` there would shadow the stdlib's."""
    path = tmp_path / "bin" / "task"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(SOURCE.read_bytes())
    path.chmod(0o755)
    return str(path)


def run_task(live_server, attempt: Attempt, token: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    token_file = tmp_path / "token"
    token_file.write_text(token)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REBENCH_API_URL": f"{live_server.url}/api",
        "REBENCH_ATTEMPT_ID": str(attempt.pk),
        "REBENCH_TOKEN_FILE": str(token_file),
    }
    return subprocess.run(
        [sys.executable, installed_task(tmp_path), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def attempt(db):
    return factories.AttemptFactory.create()


@pytest.mark.django_db(transaction=True)
def test_task_status_note_pause_resume_and_submit_work_with_the_attempt_token(live_server, attempt, tmp_path) -> None:
    token = services.attempt_token_issue(attempt=attempt)

    status = run_task(live_server, attempt, token, tmp_path, "status")
    assert status.returncode == 0, status.stderr
    assert f"Attempt {attempt.pk}" in status.stdout
    assert "running" in status.stdout
    # The deadline to the second, zone named: no ISO "T", no microseconds.
    deadline = re.search(r"\(deadline ([^)]*)\)", status.stdout).group(1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+", deadline), deadline

    note = run_task(live_server, attempt, token, tmp_path, "note", "tried", "a blocked scan")
    assert note.returncode == 0, note.stderr
    assert Note.objects.get(attempt=attempt).body == "tried a blocked scan"

    assert run_task(live_server, attempt, token, tmp_path, "pause").returncode == 0
    assert Pause.objects.get(attempt=attempt).ended_at is None
    assert run_task(live_server, attempt, token, tmp_path, "resume").returncode == 0
    assert Pause.objects.get(attempt=attempt).ended_at is not None

    refused = run_task(live_server, attempt, token, tmp_path, "submit")
    assert refused.returncode == 1
    assert "--yes" in refused.stderr
    assert run_task(live_server, attempt, token, tmp_path, "submit", "--yes").returncode == 0
    attempt.refresh_from_db()
    assert attempt.end_reason == Attempt.EndReason.SUBMITTED

    after = run_task(live_server, attempt, token, tmp_path, "status")
    assert after.returncode == 1
    assert "ended" in after.stderr


@pytest.mark.django_db(transaction=True)
def test_task_score_log_says_plainly_when_scoring_is_not_available(live_server, attempt, tmp_path) -> None:
    token = services.attempt_token_issue(attempt=attempt)
    answer = APIClient().post(f"/api/attempts/{attempt.pk}/score/", HTTP_AUTHORIZATION=f"Attempt {token}")
    result = run_task(live_server, attempt, token, tmp_path, "score-log")
    if answer.status_code == 404:
        assert "Scoring isn't available for this environment yet" in result.stdout
    else:  # the grading issue's endpoints are there: the token reaches them
        assert answer.status_code in (200, 202), answer.content
        assert "Not allowed" not in result.stderr


@pytest.mark.django_db
def test_task_without_its_environment_says_what_is_missing(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, installed_task(tmp_path), "status"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "REBENCH_API_URL" in result.stderr
    assert "inside the attempt's terminal" in result.stderr


# --- the token itself ------------------------------------------------------------------------


def test_the_token_authenticates_as_the_expert_for_its_own_attempt(attempt) -> None:
    token = services.attempt_token_issue(attempt=attempt)
    response = APIClient().get(f"/api/attempts/{attempt.pk}/", HTTP_AUTHORIZATION=f"Attempt {token}")
    assert response.status_code == 200
    assert response.json()["user"]["username"] == attempt.user.username
    assert AttemptToken.objects.get(attempt=attempt).last_used_at is not None


def test_only_the_hash_of_the_token_is_stored(attempt) -> None:
    token = services.attempt_token_issue(attempt=attempt)
    stored = AttemptToken.objects.get(attempt=attempt)
    assert token not in stored.key_hash
    assert stored.key_hash == AttemptToken.hash_of(token)


def test_the_token_is_refused_for_another_attempt_and_other_urls(attempt) -> None:
    token = services.attempt_token_issue(attempt=attempt)
    # The same expert's earlier attempt (two days ago, so the slots don't overlap).
    other = factories.AttemptFactory.create(
        reservation__expert=attempt.user, reservation__starts_at=timezone.now() - timedelta(days=2)
    )
    client = APIClient()
    header: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Attempt {token}"}
    assert client.get(f"/api/attempts/{other.pk}/", **header).status_code == 401
    assert client.get("/api/attempts/", **header).status_code == 401
    assert client.get("/api/reservations/", **header).status_code == 401
    assert client.get(f"/api/attempts/{attempt.pk}/", HTTP_AUTHORIZATION="Attempt not-a-token").status_code == 401


def test_the_token_stops_working_when_the_attempt_ends(attempt) -> None:
    token = services.attempt_token_issue(attempt=attempt)
    services.attempt_submit(attempt=attempt, by=attempt.user)
    response = APIClient().get(f"/api/attempts/{attempt.pk}/", HTTP_AUTHORIZATION=f"Attempt {token}")
    assert response.status_code == 401
    assert "ended" in response.json()["detail"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(90)
def test_task_in_the_sandboxed_shell_reaches_its_attempt_through_the_workstations_relay(
    live_server, local_attempt, settings
) -> None:
    """No token in the shell, no network in the sandbox: `task` talks to the relay, which adds the credential."""
    from tests.hostile.shell import close, open_shell, run
    from tests.trials import terminal_support as ts

    settings.TERMINAL_API_URL = f"{live_server.url}/api"

    @ts.sync
    async def session() -> None:
        screen = await open_shell(local_attempt)
        out = await run(screen, "task status; task note 'from inside the sandbox'")
        await close(screen)
        assert f"Attempt {local_attempt.pk}" in out, out
        assert "Working time" in out, out

    session()
    assert Note.objects.filter(attempt=local_attempt, body="from inside the sandbox").exists()


@pytest.mark.django_db(transaction=True)
def test_task_score_log_prints_each_entry_with_its_time_score_and_message(live_server, attempt, tmp_path) -> None:
    from graders.models import ScoreLogEntry

    ScoreLogEntry.objects.create(
        attempt=attempt, scored_at=timezone.now(), elapsed_seconds=3725, score=0.75, message="fast enough"
    )
    ScoreLogEntry.objects.create(
        attempt=attempt, scored_at=timezone.now(), elapsed_seconds=4000, score=None, message="wrong at index 3"
    )
    token = services.attempt_token_issue(attempt=attempt)
    result = run_task(live_server, attempt, token, tmp_path, "score-log")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["1:02:05  0.75  fast enough", "1:06:40  invalid  wrong at index 3"]


@pytest.mark.django_db(transaction=True)
def test_task_score_log_of_a_hidden_score_environment_tells_validity_only(live_server, attempt, tmp_path) -> None:
    from graders.models import ScoreLogEntry

    type(attempt.environment).objects.filter(pk=attempt.environment_id).update(scores_visible=False)
    ScoreLogEntry.objects.create(attempt=attempt, scored_at=timezone.now(), elapsed_seconds=60, score=0.75, message="")
    token = services.attempt_token_issue(attempt=attempt)
    result = run_task(live_server, attempt, token, tmp_path, "score-log")
    assert result.returncode == 0, result.stderr
    assert "0.75" not in result.stdout
    assert result.stdout.splitlines()[0] == "0:01:00  valid (score hidden)"


def test_make_run_on_another_port_hands_its_own_address_to_the_shells_task() -> None:
    from rebench_site.management.commands.rundev import site_env

    assert site_env({}, "127.0.0.1", 8123)["SITE_URL"] == "http://127.0.0.1:8123"
    assert site_env({}, "0.0.0.0", 9000)["SITE_URL"] == "http://127.0.0.1:9000"  # noqa: S104 - listening on all
    assert site_env({}, "::1", 9000)["SITE_URL"] == "http://[::1]:9000"
    # An operator's address (a proxy in front of the server) is kept.
    assert site_env({"SITE_URL": "https://trials.example"}, "127.0.0.1", 8123)["SITE_URL"] == "https://trials.example"


@pytest.mark.django_db(transaction=True)
def test_task_instructions_prints_the_environments_instructions(live_server, tmp_path) -> None:
    attempt = factories.AttemptFactory.create(environment=factories.environment("ai_rd_triton_cumsum"))
    token = services.attempt_token_issue(attempt=attempt)
    result = run_task(live_server, attempt, token, tmp_path, "instructions")
    assert result.returncode == 0, result.stderr
    assert "prefix_sum" in result.stdout
