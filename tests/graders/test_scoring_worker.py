"""Scoring through a real Celery worker on the workstation's queue, on Redis and on the embedded broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection

from graders import services
from graders.models import AttemptScore, ScoreLogEntry, ScoringJob
from tests.trials.celery_support import (
    BROKERS,
    broker_url,
    queue_length,
    running_worker,
    using_broker,
    wait_for,
)
from tests.workspace_support import put
from trials import services as trials_services
from trials.models import Attempt, Pause

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture(params=BROKERS)
def app(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Celery]:
    with using_broker(broker_url(request.param, tmp_path)) as app:
        yield app


def job_status(job_id: str) -> str:
    return ScoringJob.objects.values_list("status", flat=True).get(pk=job_id)


def test_the_api_queues_a_job_that_a_worker_on_the_workstation_queue_scores(
    app: Celery, attempt_on: Callable[..., Attempt], client: Any
) -> None:
    attempt = attempt_on("grading_test_ok")
    client.force_login(attempt.user)
    response = client.post(f"/api/attempts/{attempt.pk}/score/")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    job_id = body["job"]
    assert ScoringJob.objects.get(pk=job_id).queue_name == attempt.workstation.queue_name

    # The message waits on the workstation's own queue, not the default one.
    assert queue_length(app, attempt.workstation.queue_name) == 1
    assert queue_length(app, "celery") == 0
    with running_worker(app, queues=[attempt.workstation.queue_name]):
        assert wait_for(lambda: job_status(job_id) == "done", timeout=60)

    polled = client.get(f"/api/attempts/{attempt.pk}/score-jobs/{job_id}/").json()
    assert polled["status"] == "done"
    assert polled["entry"]["score"] == 0.5
    assert polled["entry"]["valid"] is True
    scoring = Pause.objects.get(attempt=attempt)
    assert scoring.reason == Pause.Reason.SCORING
    assert scoring.ended_at is not None  # the clock runs again
    log = client.get(f"/api/attempts/{attempt.pk}/score-log/").json()
    assert [e["score"] for e in log["entries"]] == [0.5]
    assert log["final_score"] == 0.5


def test_ending_the_attempt_makes_a_final_scoring_run_and_stores_the_final_score(
    app: Celery, attempt_on: Callable[..., Attempt]
) -> None:
    attempt = attempt_on("grading_test_ok")
    services.workspace_prepare(attempt=attempt)
    put(services.workspace_path(attempt), "score.txt", "0.75")
    with running_worker(app, queues=[attempt.workstation.queue_name]):
        trials_services.attempt_submit(attempt=attempt, by=attempt.user)
        assert wait_for(lambda: AttemptScore.objects.filter(attempt=attempt, is_final=True).exists(), timeout=60)
        trials_services.attempt_submit(attempt=attempt, by=attempt.user)  # ending twice: still one final run
        time.sleep(0.5)
    final = AttemptScore.objects.get(attempt=attempt)
    assert final.raw == 0.75
    assert final.normalised == 0.75
    assert ScoringJob.objects.filter(attempt=attempt, kind="final").count() == 1
    entry = ScoreLogEntry.objects.get(attempt=attempt)
    attempt.refresh_from_db()
    assert entry.elapsed_seconds == pytest.approx((attempt.ended_at - attempt.started_at).total_seconds(), abs=0.01)


def killed_worker_redis_url() -> str:
    """A Redis database of this test's own: other suites' Celery tests flush theirs (15) as they start,
    which would take this test's unacknowledged message with it when suites run side by side."""
    return urlsplit(os.environ["REDIS_URL"])._replace(path="/14").geturl()


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    host = db.get("HOST") or "127.0.0.1"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def _worker_process(queue: str, grading_root: Path, name: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": killed_worker_redis_url(),
        # Short, so the killed worker's message comes back within the test.
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "GRADING_PACKAGE_DIRS": str(settings.GRADING_PACKAGE_DIRS[0]),
        "TERMINAL_WORKSPACE_ROOT": str(grading_root / "workspaces"),
        "PROTECTED_DIR": str(grading_root / "protected"),
        "GRADING_FINAL_SCORING": "false",
    }
    argv = [sys.executable, "-m", "celery", "-A", "rebench_site", "worker", "-Q", queue, "--pool", "solo"]
    argv += ["--without-mingle", "--without-gossip", "--loglevel", "INFO", "--hostname", f"{name}@test"]
    # To a file, not a pipe nobody reads: a full pipe would stall the worker.
    log = (grading_root / f"{name}.log").open("wb")
    return subprocess.Popen(argv, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)


def slow_scorers_running() -> int:
    """The harness processes of grading_test_slow on this machine (they are in a PID namespace: found by name)."""
    ps = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return sum(1 for line in ps.splitlines() if line.startswith("python3 -c") and line.endswith("rebench-slow-scorer"))


def _logs(grading_root: Path) -> str:
    import redis

    client = redis.Redis.from_url(killed_worker_redis_url())
    keys = {k.decode(): client.type(k).decode() for k in client.keys("*")}
    ttl = client.ttl("unacked_mutex")
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(grading_root.glob("*.log")))
    return f"redis keys {keys} mutex ttl {ttl}\n{logs}"


@pytest.mark.redis
def test_a_worker_killed_mid_scoring_leaves_the_job_to_run_again_and_one_entry_is_written(
    attempt_on: Callable[..., Attempt], grading_dirs: Path
) -> None:
    attempt = attempt_on("grading_test_slow")
    services.workspace_prepare(attempt=attempt)
    workspace = services.workspace_path(attempt)
    put(workspace, "sleep.txt", "60")
    queue = attempt.workstation.queue_name
    with using_broker(killed_worker_redis_url()):
        job = services.scoring_job_request(attempt=attempt, by=attempt.user)
        first = _worker_process(queue, grading_dirs, "first")
        second = None
        try:
            assert wait_for(lambda: (workspace / "starts.txt").exists(), timeout=60), _logs(grading_dirs)
            assert job_status(str(job.pk)) == "running"
            assert wait_for(lambda: slow_scorers_running() == 1, timeout=30), _logs(grading_dirs)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            # The scorer's sandbox dies with its worker (parent-death signal), rather than scoring into the void.
            assert wait_for(lambda: slow_scorers_running() == 0, timeout=10)
            put(workspace, "sleep.txt", "0")
            # kombu's Redis transport looks for expired unacked messages when a worker starts and then
            # only every ~100 s: start the next worker once the 3 s visibility timeout has passed.
            time.sleep(4)

            second = _worker_process(queue, grading_dirs, "second")
            assert wait_for(lambda: job_status(str(job.pk)) == "done", timeout=60), _logs(grading_dirs)
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=20)
    job.refresh_from_db()
    assert job.deliveries == 2
    assert len((workspace / "starts.txt").read_text().split()) == 2
    assert ScoreLogEntry.objects.filter(attempt=attempt).count() == 1
    assert ScoreLogEntry.objects.get(attempt=attempt).score == 3.0
    # One scoring pause, ended: the redelivery did not open a second.
    assert [(p.reason, p.ended_at is not None) for p in Pause.objects.filter(attempt=attempt)] == [("scoring", True)]
