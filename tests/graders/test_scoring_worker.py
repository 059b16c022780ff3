"""Scoring through a real Celery worker on the workstation's queue, on Redis and on the embedded broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection

from graders import services
from graders.models import AttemptScore, ScoreLogEntry, ScoringJob
from tests import factories
from tests.graders.conftest import package_environment
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
from trials.models import Attempt, Pause, Workstation
from workstation import layout

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


def start_attempt(slug: str) -> Attempt:
    """The expert presses Start in a slot open now: the preparation's message waits on the workstation's queue."""
    expert = factories.expert()
    reservation = factories.ReservationFactory.create(expert=expert, environment=package_environment(slug))
    return trials_services.attempt_start(reservation=reservation, by=expert)


def fresh(attempt: Attempt) -> Attempt:
    return Attempt.objects.prefetch_related("pauses").get(pk=attempt.pk)


def test_the_clock_does_not_start_before_the_worker_has_scored_the_starting_solution(
    app: Celery, grading_dirs: Path
) -> None:
    attempt = start_attempt("grading_test_ok")
    assert attempt.reservation is not None
    time.sleep(1.0)  # time passes; none of it counts
    waiting = fresh(attempt)
    assert waiting.clock_started_at is None
    assert waiting.workspace_ready_at is None, "a new attempt's page says its workspace is being prepared"
    assert waiting.elapsed() == timedelta(0)
    assert waiting.deadline() == attempt.reservation.ends_at  # not set by the clock: only the slot's end

    with running_worker(app, queues=[attempt.reservation.workstation.queue_name]):
        assert wait_for(lambda: fresh(attempt).clock_started_at is not None, timeout=60)
    started = fresh(attempt)
    entry = ScoreLogEntry.objects.select_related("job").get(attempt=attempt)
    assert entry.job is not None
    assert entry.job.kind == ScoringJob.Kind.START
    assert started.workspace_ready_at is not None
    assert started.clock_started_at is not None
    assert entry.job.started_at is not None
    assert started.workspace_ready_at <= entry.job.started_at
    assert started.clock_started_at == entry.scored_at  # the clock starts at the scoring moment
    assert entry.elapsed_seconds == 0
    assert started.deadline() == started.clock_started_at + started.time_limit
    assert not Pause.objects.filter(attempt=attempt).exists()


def test_a_failed_preparation_costs_no_time_and_preparing_again_starts_the_clock(
    app: Celery, grading_dirs: Path
) -> None:
    attempt = start_attempt("grading_test_start_fails")
    assert attempt.user is not None
    assert attempt.reservation is not None
    with running_worker(app, queues=[attempt.reservation.workstation.queue_name]):
        assert wait_for(lambda: fresh(attempt).preparation_error != "", timeout=60)
        failed = fresh(attempt)
        assert "CUDA out of memory (test)" in failed.preparation_error
        assert failed.clock_started_at is None
        assert failed.workspace_ready_at is None
        assert failed.elapsed() == timedelta(0)
        assert not ScoringJob.objects.filter(attempt=attempt).exists()

        (grading_dirs / "protected" / "start-allowed").touch()
        trials_services.attempt_preparation_retry(attempt=failed, by=attempt.user)
        assert wait_for(lambda: fresh(attempt).clock_started_at is not None, timeout=60)
    started = fresh(attempt)
    assert started.preparation_error == ""
    entry = ScoreLogEntry.objects.get(attempt=attempt)
    assert started.clock_started_at == entry.scored_at
    assert started.deadline() == started.clock_started_at + started.time_limit  # the whole time limit


def test_ending_the_attempt_makes_a_final_scoring_run_and_stores_the_final_score(
    app: Celery, attempt_on: Callable[..., Attempt]
) -> None:
    attempt = attempt_on("grading_test_ok")
    services.workspace_prepare(attempt=attempt)
    put(layout.workspace(attempt.pk), "score.txt", "0.75")
    with running_worker(app, queues=[attempt.workstation.queue_name]):
        assert attempt.user is not None
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
    assert attempt.ended_at is not None
    assert entry.elapsed_seconds == pytest.approx((attempt.ended_at - attempt.started_at).total_seconds(), abs=0.01)


def killed_worker_redis_url() -> str:
    """A Redis database of this test's own: other suites' Celery tests flush theirs (15) as they start,
    which would take this test's unacknowledged message with it when suites run side by side."""
    return urlsplit(os.environ["REDIS_URL"])._replace(path="/14").geturl()


RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _rabbitmq_up() -> bool:
    import socket

    target = urlsplit(RABBITMQ_URL)
    try:
        socket.create_connection((target.hostname or "127.0.0.1", target.port or 5672), timeout=2).close()
    except OSError:
        return False
    return True


# Every broker the project supports: the embedded one (it never redelivers a dead worker's message),
# Redis (after its visibility timeout) and RabbitMQ (when the connection drops).
KILL_BROKERS = [
    pytest.param("sqla", id="sqla-broker"),
    pytest.param("redis", id="redis-broker", marks=pytest.mark.redis),
    pytest.param(
        "amqp",
        id="rabbitmq-broker",
        marks=pytest.mark.skipif(not _rabbitmq_up(), reason="no RabbitMQ at RABBITMQ_URL"),
    ),
]


def kill_broker_url(kind: str, root: Path) -> str:
    if kind == "redis":
        return killed_worker_redis_url()
    if kind == "amqp":
        return RABBITMQ_URL
    return f"sqla+sqlite:///{root / 'kill-broker.sqlite3'}"


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    host = db.get("HOST") or "127.0.0.1"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


LOST_AFTER = 3


def _worker_process(queue: str, grading_root: Path, name: str, broker: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker,
        # Short, so a killed worker's message comes back within the test where the broker returns it.
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "SCORING_HEARTBEAT_SECONDS": "1",
        "SCORING_LOST_AFTER_SECONDS": str(LOST_AFTER),
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
    return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(grading_root.glob("*.log")))


class Workers:
    """Real worker processes on one queue, each killed with SIGKILL or stopped at the end."""

    def __init__(self, queue: str, root: Path, broker: str) -> None:
        self.queue, self.root, self.broker = queue, root, broker
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        proc = _worker_process(self.queue, self.root, f"worker-{len(self.procs) + 1}", self.broker)
        self.procs.append(proc)
        return proc

    def kill_while_scoring(self, proc: subprocess.Popen[bytes], job_id: str, runs: int) -> None:
        """Once the job runs (its scorer started `runs` times), kill -9 its worker; the scorer dies with it."""
        workspace_starts = self.root / "workspaces"
        assert wait_for(lambda: job_status(job_id) == "running" and slow_scorers_running() == 1, timeout=60), _logs(
            self.root
        )
        assert wait_for(lambda: _starts(workspace_starts) >= runs, timeout=10)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        # The scorer's sandbox dies with its worker (parent-death signal), rather than scoring into the void.
        assert wait_for(lambda: slow_scorers_running() == 0, timeout=10)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)


def _starts(workspaces: Path) -> int:
    return sum(len(p.read_text().split()) for p in workspaces.glob("*/starts.txt"))


@pytest.fixture(params=KILL_BROKERS)
def kill_broker(request: pytest.FixtureRequest, grading_dirs: Path) -> Iterator[str]:
    url = kill_broker_url(request.param, grading_dirs)
    with using_broker(url) as app:
        if request.param == "amqp":
            app.control.purge()
        yield url


def _slow_attempt(attempt_on: Callable[..., Attempt], seconds: str) -> tuple[Attempt, Path, str]:
    """An attempt of the slow scorer on a queue of its own (a broker shared across runs keeps no stale message)."""
    attempt = attempt_on("grading_test_slow")
    queue = f"ws.kill-{uuid.uuid4().hex[:12]}"
    assert attempt.workstation_id is not None
    Workstation.objects.filter(pk=attempt.workstation_id).update(queue_name=queue)
    attempt.refresh_from_db()
    services.workspace_prepare(attempt=attempt)
    workspace = layout.workspace(attempt.pk)
    put(workspace, "sleep.txt", seconds)
    return attempt, workspace, queue


def test_a_worker_killed_mid_scoring_is_replaced_and_exactly_one_entry_is_written(
    attempt_on: Callable[..., Attempt], grading_dirs: Path, kill_broker: str, settings: Any
) -> None:
    settings.SCORING_LOST_AFTER_SECONDS = LOST_AFTER
    attempt, workspace, queue = _slow_attempt(attempt_on, "60")
    workers = Workers(queue, grading_dirs, kill_broker)
    try:
        assert attempt.user is not None
        job = services.scoring_job_request(attempt=attempt, by=attempt.user)
        workers.kill_while_scoring(workers.start(), str(job.pk), runs=1)
        put(workspace, "sleep.txt", "0")
        # The sweep (beat's task) finds the silent job once LOST_AFTER has passed and sends it out again.
        assert wait_for(lambda: services.scoring_jobs_recover().get(str(job.pk)) == "queued", timeout=20)
        workers.start()
        assert wait_for(lambda: job_status(str(job.pk)) == "done", timeout=60), _logs(grading_dirs)
        time.sleep(1)  # a message the broker returned as well finds the job done, and does nothing
    finally:
        workers.stop()
    job.refresh_from_db()
    assert job.deliveries == 2
    assert len((workspace / "starts.txt").read_text().split()) == 2
    assert ScoreLogEntry.objects.filter(attempt=attempt).count() == 1
    assert ScoreLogEntry.objects.get(attempt=attempt).score == 3.0
    # One scoring pause, ended: the second delivery did not open a second.
    assert [(p.reason, p.ended_at is not None) for p in Pause.objects.filter(attempt=attempt)] == [("scoring", True)]


def test_a_job_whose_worker_is_killed_twice_is_closed_lost_and_the_attempt_scores_again(
    attempt_on: Callable[..., Attempt], grading_dirs: Path, kill_broker: str, settings: Any
) -> None:
    settings.SCORING_LOST_AFTER_SECONDS = LOST_AFTER
    attempt, workspace, queue = _slow_attempt(attempt_on, "60")
    workers = Workers(queue, grading_dirs, kill_broker)
    try:
        assert attempt.user is not None
        job = services.scoring_job_request(attempt=attempt, by=attempt.user)
        workers.kill_while_scoring(workers.start(), str(job.pk), runs=1)
        assert wait_for(lambda: services.scoring_jobs_recover().get(str(job.pk)) == "queued", timeout=20)
        workers.kill_while_scoring(workers.start(), str(job.pk), runs=2)
        assert wait_for(lambda: services.scoring_jobs_recover().get(str(job.pk)) == "closed", timeout=20)
        entry = ScoreLogEntry.objects.get(attempt=attempt)
        assert entry.score is None
        assert entry.details["lost"] is True
        assert job_status(str(job.pk)) == "failed"
        attempt.refresh_from_db()
        assert attempt.is_running
        assert Pause.objects.get(attempt=attempt).ended_at is not None  # the clock runs again
        # A usable attempt: the next request is a new job, and it is scored.
        put(workspace, "sleep.txt", "0")
        again = services.scoring_job_request(attempt=attempt, by=attempt.user)
        assert again.pk != job.pk
        workers.start()
        assert wait_for(lambda: job_status(str(again.pk)) == "done", timeout=60), _logs(grading_dirs)
    finally:
        workers.stop()
    assert ScoreLogEntry.objects.filter(job=job).count() == 1
    assert [e.score for e in ScoreLogEntry.objects.filter(attempt=attempt).order_by("pk")] == [None, 3.0]


def test_task_score_in_the_shell_waits_for_the_worker_and_prints_the_score(
    app: Celery, attempt_on: Callable[..., Attempt], live_server: Any, tmp_path: Path
) -> None:
    from tests.trials.test_task_cli import run_task

    attempt = attempt_on("grading_test_ok")
    token = trials_services.attempt_token_issue(attempt=attempt)
    with running_worker(app, queues=[attempt.workstation.queue_name]):
        result = run_task(live_server, attempt, token, tmp_path, "score")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Scoring queued" in result.stdout
    assert "score: 0.5" in result.stdout
    assert ScoreLogEntry.objects.get(attempt=attempt).score == 0.5
