"""A workstation's agent with no database: a real agent process prepares, scores and beats through the site's API.

The agent runs as on a workstation host: `celery -A workstation.agent worker` with the agent's
settings, an environment with no DATABASE_URL, SECRET_KEY or REDIS_URL, its broker and the site's
address (a live server of this test) and its workstation's token. The site's side is this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from django.conf import settings

from graders import services
from graders.models import ScoreLogEntry, ScoringJob
from tests.graders.test_scoring_worker import fresh, start_attempt
from tests.trials.celery_support import BROKERS, broker_url, using_broker, wait_for
from trials import services as trials_services
from trials.models import Workstation
from workstation.agent.tasks import workstation_heartbeat

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180), pytest.mark.slow]

# Never in the agent's environment: the web host's credentials.
SITE_ONLY = ("DATABASE_URL", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "REDIS_URL")


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[Celery, str]]:
    url = broker_url(request.param, tmp_path)
    with using_broker(url) as app:
        yield app, url


def agent_process(*, queue: str, broker: str, site: str, token: str, root: Path) -> subprocess.Popen[bytes]:
    env = {name: value for name, value in os.environ.items() if name not in SITE_ONLY and not name.startswith("DB_")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "rebench_site.agent_settings",
            "CELERY_BROKER_URL": broker,
            "WORKSTATION_SITE_URL": site,
            "WORKSTATION_AGENT_TOKEN": token,
            "SCORING_HEARTBEAT_SECONDS": "1",
            "GRADING_PACKAGE_DIRS": str(settings.GRADING_PACKAGE_DIRS[0]),
            "TERMINAL_WORKSPACE_ROOT": str(root / "workspaces"),
            "PROTECTED_DIR": str(root / "protected"),
        }
    )
    argv = [sys.executable, "-m", "celery", "-A", "workstation.agent", "worker", "-Q", queue, "--pool", "solo"]
    argv += ["--without-mingle", "--without-gossip", "--loglevel", "INFO", "--hostname", "agent@test"]
    log = (root / "agent.log").open("wb")  # a file, not a pipe nobody reads
    return subprocess.Popen(argv, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)


def test_an_agent_without_a_database_prepares_scores_and_beats_through_the_sites_api(
    broker: tuple[Celery, str], live_server: Any, grading_dirs: Path
) -> None:
    _, url = broker
    attempt = start_attempt("grading_test_ok")  # its preparation waits on the workstation's queue
    assert attempt.reservation is not None
    workstation = attempt.reservation.workstation
    token = trials_services.workstation_agent_token_issue(workstation=workstation, by=None)
    Workstation.objects.filter(pk=workstation.pk).update(last_heartbeat_at=None)
    agent = agent_process(
        queue=workstation.queue_name, broker=url, site=live_server.url, token=token, root=grading_dirs
    )
    try:
        environ = Path(f"/proc/{agent.pid}/environ").read_bytes().split(b"\0")
        assert not [v for v in environ if v.split(b"=")[0].decode() in SITE_ONLY]

        # Prepared there, the starting solution scored there: the clock starts here.
        assert wait_for(lambda: fresh(attempt).clock_started_at is not None, timeout=90), log(grading_dirs)
        start = ScoreLogEntry.objects.select_related("job").get(attempt=attempt)
        assert start.job is not None
        assert start.job.kind == ScoringJob.Kind.START

        # The expert asks for a score: the agent runs it, the site writes the entry and the clock runs on.
        assert attempt.user is not None
        job = services.scoring_job_request(attempt=fresh(attempt), by=attempt.user)
        assert wait_for(lambda: ScoringJob.objects.get(pk=job.pk).status == "done", timeout=60), log(grading_dirs)
        entry = ScoreLogEntry.objects.get(job=job)
        assert entry.score == 0.5
        assert entry.scorer_digest
        assert not fresh(attempt).pauses.filter(ended_at__isnull=True).exists()

        # Its heartbeat reaches the workstation's row, with what the machine can do.
        workstation_heartbeat.apply_async(args=(workstation.pk,), queue=workstation.queue_name)
        assert wait_for(lambda: Workstation.objects.get(pk=workstation.pk).last_heartbeat_at is not None, timeout=60)
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    assert "Traceback" not in log(grading_dirs), log(grading_dirs)


def log(root: Path) -> str:
    return (root / "agent.log").read_text(errors="replace")[-4000:]
