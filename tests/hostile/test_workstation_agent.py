"""A workstation's agent, or whoever holds its host, reaches only its own jobs and no database.

Before the agent, a workstation's worker ran the site's services with the database's URL and the
site's SECRET_KEY in its environment file: whoever read that file on a GPU host held the whole
site. These tests attack from the workstation's side: its HTTP token against other workstations'
jobs and attempts and against the rest of the API, forged outcomes, a revoked token, and the
agent's own settings and set-up files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from graders.models import ScoreLogEntry, ScoringJob
from tests import factories
from trials import services as trials_services
from trials.models import Attempt, Workstation
from workstation import setup

pytestmark = pytest.mark.django_db


def attempt_on(name: str) -> Attempt:
    reservation = factories.ReservationFactory.create(expert=factories.expert(), workstation__name=name)
    return factories.AttemptFactory.create(reservation=reservation)


def job_of(attempt: Attempt) -> ScoringJob:
    assert attempt.workstation is not None
    return ScoringJob.objects.create(attempt=attempt, queue_name=attempt.workstation.queue_name)


def agent(client: Client, token: str, path: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(
        f"/api/workstation-agent/{path}",
        body or {},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Workstation {token}",
    )


@pytest.fixture
def two() -> tuple[Attempt, str, Attempt]:
    """An attempt on workstation A (whose token the attacker holds) and one on workstation B."""
    mine = attempt_on("ws-a")
    theirs = attempt_on("ws-b")
    assert mine.workstation is not None
    token = trials_services.workstation_agent_token_issue(workstation=mine.workstation, by=None)
    return mine, token, theirs


def test_a_workstations_token_reaches_no_job_or_attempt_of_another_workstation(two, client: Client) -> None:
    _, token, theirs = two
    job = job_of(theirs)
    assert theirs.workstation is not None
    beat_before = theirs.workstation.last_heartbeat_at
    outcome = {"score": 1.0, "message": "forged", "details": {}, "scorer_digest": ""}
    for path, body in [
        (f"jobs/{job.pk}/begin", None),
        (f"jobs/{job.pk}/beat", None),
        (f"jobs/{job.pk}/finish", {"outcome": outcome, "status": "done"}),
        (f"attempts/{theirs.pk}/preparation", None),
        (f"attempts/{theirs.pk}/prepared", None),
        (f"attempts/{theirs.pk}/preparation-failed", {"reason": "forged"}),
    ]:
        response = agent(client, token, path, body)
        assert response.status_code == 404, (path, response.content)
    # Its heartbeat speaks for itself only.
    response = agent(client, token, "heartbeat", {"workstation": theirs.workstation.pk, "inventory": {}})
    assert response.status_code == 404
    # Nothing moved: the job is queued still, with no entry; the attempt's state is its own.
    job.refresh_from_db()
    assert job.status == ScoringJob.Status.QUEUED
    assert job.deliveries == 0
    assert not ScoreLogEntry.objects.filter(attempt=theirs).exists()
    theirs.refresh_from_db()
    assert theirs.preparation_error == ""
    assert theirs.workspace_ready_at is None
    assert Workstation.objects.get(pk=theirs.workstation.pk).last_heartbeat_at == beat_before
    # A retirement question about another's attempt is answered "no", never "yes".
    assert agent(client, token, f"attempts/{theirs.pk}/retirement").json() == {"retire": False}


def test_its_own_jobs_answer(two, client: Client) -> None:
    # The other side of the test above: the same calls for its own job work, so the 404s are the scope.
    mine, token, _ = two
    job = job_of(mine)
    spec = agent(client, token, f"jobs/{job.pk}/begin").json()["spec"]
    assert spec["job_id"] == str(job.pk)
    assert spec["attempt_id"] == mine.pk
    assert settings.SECRET_KEY not in repr(spec)
    outcome = {"score": 0.25, "message": "ok", "details": {}, "scorer_digest": ""}
    assert agent(client, token, f"jobs/{job.pk}/finish", {"outcome": outcome, "status": "done"}).status_code == 200
    assert ScoreLogEntry.objects.get(job=job).score == 0.25


def test_a_revoked_or_replaced_token_is_refused_and_writes_nothing(two, client: Client) -> None:
    mine, token, _ = two
    assert mine.workstation is not None
    job = job_of(mine)
    newer = trials_services.workstation_agent_token_issue(workstation=mine.workstation, by=None)
    assert agent(client, token, f"jobs/{job.pk}/begin").status_code == 401
    trials_services.workstation_agent_token_revoke(workstation=mine.workstation, by=None)
    assert agent(client, newer, f"jobs/{job.pk}/begin").status_code == 401
    job.refresh_from_db()
    assert job.status == ScoringJob.Status.QUEUED


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"outcome": {"score": "NaN"}, "status": "done"}, "outcome.score"),
        ({"outcome": {"score": True}, "status": "done"}, "outcome.score"),
        ({"outcome": {"score": 1.0, "details": ["x"]}, "status": "done"}, "outcome.details"),
        ({"outcome": {"score": 1.0, "message": 3}, "status": "done"}, "outcome.message"),
        ({"outcome": {"score": 1.0, "scorer_digest": "x" * 65}, "status": "done"}, "outcome.scorer_digest"),
        ({"outcome": {"score": 1.0}, "status": "queued"}, "status"),
        ({"outcome": [], "status": "done"}, "outcome"),
    ],
)
def test_a_malformed_outcome_is_a_400_naming_the_field_and_writes_nothing(
    two, client: Client, body: dict[str, Any], field: str
) -> None:
    mine, token, _ = two
    job = job_of(mine)
    response = agent(client, token, f"jobs/{job.pk}/finish", body)
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not ScoreLogEntry.objects.filter(job=job).exists()


def test_the_workstation_token_opens_nothing_else_of_the_api(two, client: Client) -> None:
    mine, token, _ = two
    header = f"Workstation {token}"
    for path in ["/api/attempts/", "/api/workstations/", f"/api/attempts/{mine.pk}/score-log/", "/api/leaderboards/"]:
        assert client.get(path, HTTP_AUTHORIZATION=header).status_code in (401, 403), path
    assert client.post(f"/api/attempts/{mine.pk}/score/", HTTP_AUTHORIZATION=header).status_code in (401, 403)


def test_no_user_login_opens_the_agents_endpoints_not_even_an_admins(two, client: Client) -> None:
    mine, _, _ = two
    job = job_of(mine)
    for user in (mine.user, factories.admin()):
        client.force_login(user)
        assert client.post(f"/api/workstation-agent/jobs/{job.pk}/begin").status_code in (401, 403)
    job.refresh_from_db()
    assert job.status == ScoringJob.Status.QUEUED


def test_on_the_workstation_the_agents_settings_reach_no_database(tmp_path: Path) -> None:
    # Whoever runs code as the agent (its settings, its environment) tries the site's own ORM and a
    # raw connection: there is no database to reach, nor a URL of one, nor the site's key.
    attack = (
        "import django, os\n"
        "django.setup()\n"
        "from django.conf import settings\n"
        "from django.db import connection\n"
        "from trials.models import Attempt\n"
        "assert settings.DATABASES['default']['ENGINE'] == 'django.db.backends.dummy'\n"
        f"assert settings.SECRET_KEY != {settings.SECRET_KEY!r}\n"
        "for reach in (lambda: Attempt.objects.count(), lambda: connection.cursor()):\n"
        "    try:\n"
        "        reach()\n"
        "    except django.core.exceptions.ImproperlyConfigured:\n"
        "        print('refused')\n"
    )
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "SECRET_KEY", "REDIS_URL"} and not name.startswith("DB_")
    }
    env["DJANGO_SETTINGS_MODULE"] = "rebench_site.agent_settings"
    result = subprocess.run(
        [sys.executable, "-c", attack], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["refused", "refused"]


def run_setup(script: str, root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The set-up script against a scratch root (REBENCH_SETUP_ROOT), with `env` added to its environment."""
    return subprocess.run(
        ["bash", "-s"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "REBENCH_SETUP_ROOT": str(root), **env},
    )


def test_the_set_up_writes_no_database_url_or_site_secret_for_the_workstation(tmp_path: Path) -> None:
    web_host = {
        "DATABASE_URL": "postgres://site:db-password@db.internal/rebench",
        "SECRET_KEY": "the-site-secret-key-" + "x" * 40,
        "REDIS_URL": "redis://:cache-password@cache.internal:6379/0",
        "DB_POOL": "true",
        "SANDBOX_MEMORY_GB": "64",
    }
    host = setup.Host(
        name="gpu9",
        host="gpu9.example.org",
        queue_name="ws.gpu9",
        checkout="/srv/rebench",
        environment=setup.worker_environment(web_host),
        broker_url="amqp://ws-gpu9:broker-password@broker.internal:5672//",
        site_url="https://rebench.example.org",
    )
    script = setup.script(host)
    result = run_setup(script, tmp_path, REBENCH_AGENT_TOKEN="tok_en-1")
    assert result.returncode == 0, result.stderr
    written = "\n".join(p.read_text() for p in (tmp_path / "etc").rglob("*") if p.is_file())
    for secret in ("db-password", "the-site-secret-key", "cache-password", "DATABASE_URL", "SECRET_KEY=", "DB_POOL"):
        assert secret not in written, secret
        assert secret not in script, secret
    assert "broker-password" in (tmp_path / "etc/rebench/worker.env").read_text()
    token = tmp_path / "etc/rebench/agent-token.env"
    assert token.read_text() == 'WORKSTATION_AGENT_TOKEN="tok_en-1"\n'
    assert token.stat().st_mode & 0o777 == 0o600
    # Run again without a token (an upgrade): the token stays; a token with odd characters is refused.
    again = run_setup(script, tmp_path)
    assert again.returncode == 0
    assert token.read_text() == 'WORKSTATION_AGENT_TOKEN="tok_en-1"\n'
    bad = run_setup(script, tmp_path, REBENCH_AGENT_TOKEN='x"; rm -rf /')
    assert bad.returncode == 1
    assert "not a token" in bad.stderr


@pytest.mark.parametrize(
    "inventory",
    [
        {"gpus": "eight", "disk": [1], "notes": 5, "sandbox_problems": "none"},
        {"gpus": [{"index": "x", "memory_mib": -1, "ecc_errors": 1e400}], "disk": {"free_bytes": "a lot"}},
        {"gpus": [None, 3, {"index": 10**30}], "notes": [{"x": 1}] * 50},
    ],
)
def test_a_heartbeat_of_odd_shapes_is_recorded_or_refused_never_a_500(two, client: Client, inventory) -> None:
    mine, token, _ = two
    assert mine.workstation is not None
    response = agent(client, token, "heartbeat", {"workstation": mine.workstation.pk, "inventory": inventory})
    assert response.status_code in (200, 400), response.content
