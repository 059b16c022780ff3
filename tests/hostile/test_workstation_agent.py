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
from tests.workstation.test_setup import run as run_setup
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


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, text=True, timeout=60)


def _rabbitmq_here() -> bool:
    import shutil
    import socket

    if os.geteuid() != 0 or shutil.which("rabbitmqctl") is None:
        return False
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError:
        return False
    return True


def _refused(url: str, action: Any) -> bool:
    """Whether RabbitMQ refuses `action` on a channel of `url`'s login (a publish's refusal comes on the next call)."""
    import amqp
    from kombu import Connection

    with Connection(url) as conn:
        channel: Any = conn.channel()  # py-amqp's channel: kombu's stub type lacks basic_qos
        try:
            action(channel)
            channel.basic_qos(0, 1, False)
        except amqp.exceptions.AccessRefused:
            return True
        except amqp.exceptions.NotFound:
            return False
    return False


@pytest.mark.skipif(not _rabbitmq_here(), reason="needs root and a RabbitMQ server here (rabbitmqctl)")
@pytest.mark.django_db(transaction=True)
def test_a_workstations_rabbitmq_login_reaches_its_own_queue_and_nothing_else(tmp_path: Path) -> None:
    import uuid

    from kombu import Connection, Exchange, Producer, Queue

    name = f"rmq{uuid.uuid4().hex[:8]}"
    user, password, queue = f"ws-{name}", uuid.uuid4().hex, f"ws.{name}"
    _rabbitmqctl("add_user", user, password)
    try:
        _rabbitmqctl("set_permissions", "-p", "/", user, *setup.broker_permissions(queue))
        url = f"amqp://{user}:{password}@127.0.0.1:5672//"
        # What a thief of the workstation's environment file tries with its login: the site's own
        # queue (to read or drop its tasks), another workstation's, and forging a task for the site.
        for target in ("celery", "ws.another-workstation"):
            assert _refused(url, lambda channel, q=target: channel.basic_get(queue=q)), target
        forged = {"task": "graders.tasks.scoring_jobs_recover", "forged": True}
        assert _refused(url, lambda channel: Producer(channel).publish(forged, routing_key="celery", exchange=""))
        assert not _refused(url, lambda channel: channel.basic_get(queue=queue)), "its own queue is open to it"
        # Its own queue is all the agent needs: a real agent with this login starts and takes a task.
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SECRET_KEY", "REDIS_URL"}}
        env.update(
            DJANGO_SETTINGS_MODULE="rebench_site.agent_settings",
            CELERY_BROKER_URL=url,
            WORKSTATION_SITE_URL="http://127.0.0.1:9",
            WORKSTATION_AGENT_TOKEN="unused",
        )
        log = tmp_path / "agent.log"
        argv = [sys.executable, "-m", "celery", "-A", "workstation.agent", "worker", "-Q", queue, "--pool", "solo"]
        agent = subprocess.Popen(
            [*argv, "--without-mingle", "--without-gossip", "-l", "INFO"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            from tests.trials.celery_support import wait_for

            assert wait_for(lambda: " ready." in log.read_text(), timeout=60), log.read_text()[-2000:]
            with Connection("amqp://guest:guest@127.0.0.1:5672//") as site:  # the site's own login
                Producer(site.default_channel).publish(
                    {"probe": True},
                    routing_key=queue,
                    exchange=Exchange(queue, type="direct"),
                    declare=[Queue(queue, Exchange(queue, type="direct"), routing_key=queue)],
                )
            assert wait_for(lambda: "Received and deleted unknown message" in log.read_text(), timeout=30), (
                log.read_text()[-2000:]
            )
        finally:
            agent.terminate()
            agent.wait(timeout=30)
        assert "ACCESS_REFUSED" not in log.read_text()
    finally:
        _rabbitmqctl("delete_user", user)
