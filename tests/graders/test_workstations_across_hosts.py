"""Two workstations on hosts of their own: each agent reaches the broker and the site, never the database.

The hosts are network namespaces (tests/multihost/hosts.py) whose only way out is a link to this
machine, where forwarders offer exactly two services: the broker (Redis) and the site (a live
server). Two experts hold one GPU each of workstation A at the same time, a third holds B; each
attempt is prepared and scored by its own host's agent. From either host PostgreSQL is refused.
Each expert works over SSH from this machine (their laptop) through their host's own sshd, in the
attempt's sandbox, and the score that host's agent takes is of what they typed there. Then A's link
is cut: its heartbeat stops, its attempts get the outage pause and B's don't, SSH to A meets nothing
while B's expert works on; the link comes back, A's agent answers again, its attempts resume, and
A's experts find their work where they left it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from celery import Celery
from django.conf import settings
from django.utils import timezone

from graders import services
from graders.models import ScoreLogEntry, ScoringJob
from tests import factories
from tests import ssh_access_support as ssh_support
from tests.graders.conftest import package_environment
from tests.multihost.hosts import ROOT_AND_IP, Forwarder, Host
from tests.trials import terminal_support as ts
from tests.trials.celery_support import redis_test_url, using_broker, wait_for
from tests.trials.ssh_server import workstation_settings
from trials import recording
from trials import services as trials_services
from trials.models import Attempt, Pause, TerminalSession, Workstation
from trials.services import sync as trials_sync
from trials.services.terminals import SSH_SESSION_BASE
from workstation import users
from workstation.agent.tasks import workstation_heartbeat
from workstation.backends.local import end_attempt_sync

pytestmark = [
    ROOT_AND_IP,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),
]

SITE_ONLY = ("DATABASE_URL", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "REDIS_URL")


@pytest.fixture
def hosts() -> Iterator[tuple[Host, Host]]:
    a, b = Host("wsa", 1), Host("wsb", 2)
    try:
        yield a.up(), b.up()
    finally:
        a.down()
        b.down()


@pytest.fixture
def broker() -> Iterator[Celery]:
    with using_broker(redis_test_url()) as app:
        yield app


class Agent:
    """The agent of one workstation, run inside its host with only the broker and the site forwarded to it."""

    def __init__(self, host: Host, workstation: Workstation, site_url: str, root: Path) -> None:
        self.host, self.root = host, root
        redis, site = urlsplit(redis_test_url()), urlsplit(site_url)
        self.forwarders = [
            Forwarder(host.gateway, redis.hostname or "127.0.0.1", redis.port or 6379),
            Forwarder(host.gateway, site.hostname or "127.0.0.1", site.port or 80),
        ]
        token = trials_services.workstation_agent_token_issue(workstation=workstation, by=None)
        env = {k: v for k, v in os.environ.items() if k not in SITE_ONLY and not k.startswith("DB_")}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "rebench_site.agent_settings",
                "CELERY_BROKER_URL": f"redis://{host.gateway}:{self.forwarders[0].port}{redis.path}",
                "WORKSTATION_SITE_URL": f"http://{host.gateway}:{self.forwarders[1].port}",
                "WORKSTATION_AGENT_TOKEN": token,
                "SCORING_HEARTBEAT_SECONDS": "1",
                "GRADING_PACKAGE_DIRS": str(settings.GRADING_PACKAGE_DIRS[0]),
                "TERMINAL_WORKSPACE_ROOT": str(root / "workspaces"),
                "PROTECTED_DIR": str(root / "protected"),
                # The host's folders as the site's side of this machine sees them: one filesystem.
                "SANDBOX_STATE_DIR": str(settings.SANDBOX_STATE_DIR),
                "SANDBOX_TOOLS_DIR": str(settings.SANDBOX_TOOLS_DIR),
                "TERMINAL_HOLDER_DIR": str(settings.TERMINAL_HOLDER_DIR),
            }
        )
        argv = host.argv(sys.executable, "-m", "celery", "-A", "workstation.agent", "worker", "-Q")
        argv += [workstation.queue_name, "--pool", "solo", "--without-mingle", "--without-gossip"]
        argv += ["--loglevel", "INFO", "--hostname", f"{workstation.name}@{host.name}"]
        self.log = root / f"agent-{workstation.name}.log"
        self.process = subprocess.Popen(
            argv, cwd=settings.BASE_DIR, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT
        )

    def said(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        for forwarder in self.forwarders:
            forwarder.close()


def in_browser_terminal(attempt: Attempt, typed: str, until: str, *, error: bool = False) -> str:
    """Open the attempt's terminal 1 as its expert's browser does (the site's consumer, in this process),
    type `typed` and return what shows until `until`; with `error`, the error the page shows instead."""

    async def session() -> str:
        screen = await ts.open_screen(ts.router(), attempt.pk, attempt.user)
        try:
            if error:
                return str((await screen.message("error", timeout=30))["message"])
            await screen.ready()
            start = len(screen.output)
            await screen.type(typed)
            await screen.until(until, start=start, timeout=30)
            return screen.output[start:].decode(errors="replace")
        finally:
            await screen.comm.disconnect()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, session()).result()


def printed(session: TerminalSession) -> str:
    """What a recorded terminal printed (its asciicast's output events)."""
    _header, events = recording.read_cast(session.recording_name)
    return "".join(str(event[2]) for event in events if event[1] == "o")


def fresh(attempt: Attempt) -> Attempt:
    return Attempt.objects.prefetch_related("pauses").get(pk=attempt.pk)


def clock_started(attempt: Attempt) -> bool:
    return fresh(attempt).clock_started_at is not None


def job_done(job: ScoringJob) -> bool:
    return ScoringJob.objects.get(pk=job.pk).status == ScoringJob.Status.DONE


def logged(agent: Agent, job: ScoringJob) -> bool:
    return f"scoring job {job.pk} of attempt" in agent.said()


def heard_since(workstation: Workstation, moment: Any) -> bool:
    heard = Workstation.objects.get(pk=workstation.pk).last_heartbeat_at
    return heard is not None and heard > moment


def test_two_workstations_on_hosts_of_their_own_score_without_the_database_and_survive_a_cut_link(
    hosts: tuple[Host, Host], broker: Celery, live_server: Any, grading_dirs: Path, settings: Any
) -> None:
    host_a, host_b = hosts
    settings.ALLOWED_HOSTS = ["*"]  # the agents call the site at their link's address
    environment = package_environment("grading_test_ok", gpus_min=1, gpus_max=1)
    ws_a = factories.WorkstationFactory.create(name="mh-a", gpu_count=2)
    ws_b = factories.WorkstationFactory.create(name="mh-b", gpu_count=1)
    # Two experts on one GPU each of A at the same time, a third on B.
    reservations = [
        factories.ReservationFactory.create(environment=environment, workstation=ws_a, gpus=[0]),
        factories.ReservationFactory.create(environment=environment, workstation=ws_a, gpus=[1]),
        factories.ReservationFactory.create(environment=environment, workstation=ws_b, gpus=[0]),
    ]
    attempts = [trials_services.attempt_start(reservation=r, by=r.expert) for r in reservations]
    stack = contextlib.ExitStack()
    keys = Path(stack.enter_context(ssh_support.keys_folder(settings)))
    key = ssh_support.make_key(keys.parent, "laptop")
    agents = [
        Agent(host_a, ws_a, live_server.url, grading_dirs),
        Agent(host_b, ws_b, live_server.url, grading_dirs),
    ]
    try:
        # From its host, each agent reaches the broker and the site; PostgreSQL is refused there.
        for agent in agents:
            assert agent.host.connect(agent.host.gateway, 5432) == "refused"
            assert agent.host.connect("127.0.0.1", 5432) == "refused"
            assert agent.host.connect(agent.host.gateway, agent.forwarders[0].port) == "connected"
            environ = Path(f"/proc/{agent.process.pid}/environ").read_bytes().split(b"\0")
            assert not [v for v in environ if v.split(b"=")[0].decode() in SITE_ONLY]

        # Each attempt is prepared and its starting solution scored on its own host: the clocks start.
        for attempt in attempts:
            assert wait_for(partial(clock_started, attempt), timeout=120), [agent.said()[-3000:] for agent in agents]
        # Each host's sshd (the project's drop-in for experts) also lets the site in: its key, root's there,
        # runs the gate (workstation/gate.py) and nothing else, as the set-up writes it.
        gate = ssh_support.site_gate(grading_dirs / "gate", keys.parent, workstation_settings())
        sshds = []
        for host in hosts:
            folder, wrap = grading_dirs / f"sshd-{host.name}", tuple(host.argv())
            sshds.append(
                stack.enter_context(ssh_support.sshd(folder, address=host.address, wrap=wrap, first=gate.first))
            )
        settings.TERMINAL_SSH_KNOWN_HOSTS = str(gate.known_hosts(sshds, grading_dirs / "known_hosts"))
        settings.TERMINAL_SSH_KEY = str(gate.key)
        settings.TERMINAL_SSH_CONNECT_TIMEOUT_SECONDS = 5
        for workstation, server in ((ws_a, sshds[0]), (ws_b, sshds[1])):
            Workstation.objects.filter(pk=workstation.pk).update(
                backend=Workstation.Backend.SSH, host=server.address, ssh_port=server.port, ssh_user=""
            )
        attempt_sshd = [sshds[0], sshds[0], sshds[1]]
        for i, attempt in enumerate(attempts):
            assert attempt.user is not None
            # The expert registers a key; the site's worker sends the attempt's control (with it) to the host.
            trials_services.ssh_key_add(user=attempt.user, public_key=key[1], name="laptop")
            trials_sync.attempt_sandbox_control_send(attempt_id=attempt.pk)
            # In the browser terminal, on the host that holds the attempt (through its gate) ...
            typed = in_browser_terminal(
                attempt, f"echo 0.7{i} > score.txt; echo typed-$((30+{i}))\r", f"typed-{30 + i}"
            )
            assert f"typed-{30 + i}" in typed
            # ... and over SSH from their laptop (this machine) through the same host's sshd: one workspace.
            login = users.attempt_user_name(attempt.pk)
            said = attempt_sshd[i].interactive(login, key[0], f"cat score.txt; echo typed-$((40+{i})); exit\n")
            assert f"typed-{40 + i}" in said, (said, attempt_sshd[i].log.read_text()[-2000:])
            assert f"0.7{i}" in said
        # Each expert scores; the job runs on the host that holds the attempt, on what was typed there.
        jobs = []
        for attempt in attempts:
            assert attempt.user is not None
            jobs.append(services.scoring_job_request(attempt=fresh(attempt), by=attempt.user))
        for i, job in enumerate(jobs):
            assert wait_for(partial(job_done, job), timeout=120)
            assert ScoreLogEntry.objects.get(job=job).score == float(f"0.7{i}")
        # Each agent logs the jobs it ran (just after the site has the outcome: waited for).
        assert wait_for(partial(logged, agents[0], jobs[0]), timeout=10)
        assert wait_for(partial(logged, agents[0], jobs[1]), timeout=10)
        assert wait_for(partial(logged, agents[1], jobs[2]), timeout=10)
        assert not logged(agents[0], jobs[2])
        assert not logged(agents[1], jobs[0])

        # A's link is cut: its heartbeat no longer arrives, B's does.
        settings.WORKSTATION_OFFLINE_AFTER = timedelta(seconds=3)
        host_a.cut()
        cut_at = timezone.now()
        time.sleep(4)
        for ws in (ws_a, ws_b):
            workstation_heartbeat.apply_async(args=(ws.pk,), queue=ws.queue_name)
        assert wait_for(lambda: heard_since(ws_b, cut_at), timeout=60)
        assert not heard_since(ws_a, cut_at)
        watched = trials_services.workstations_watch()
        assert watched["paused"] == 2
        for attempt in attempts[:2]:
            pause = fresh(attempt).open_pause()
            assert pause is not None
            assert pause.reason == Pause.Reason.TECHNICAL
        assert fresh(attempts[2]).open_pause() is None
        # A's experts' pages say so when a terminal is opened; SSH to A's host meets nothing; B's expert works on.
        error = in_browser_terminal(attempts[0], "", "", error=True)
        assert "Can't reach the workstation" in error, error
        unreachable = sshds[0].ssh(users.attempt_user_name(attempts[0].pk), key[0], "true", timeout=30)
        assert unreachable.returncode == 255
        assert sshds[1].ssh(users.attempt_user_name(attempts[2].pk), key[0], "echo on-b").stdout.strip() == "on-b"
        settings.WORKSTATION_OFFLINE_AFTER = timedelta(seconds=60)  # B's last beat is older than 3 s by now

        # The link is back: A's agent answers again (the heartbeat queued meanwhile, or a new one) and
        # its attempts resume where they were.
        host_a.restore()
        workstation_heartbeat.apply_async(args=(ws_a.pk,), queue=ws_a.queue_name)
        assert wait_for(lambda: heard_since(ws_a, cut_at), timeout=120), agents[0].said()[-3000:]
        assert trials_services.workstations_watch()["resumed"] == 2
        for attempt in attempts:
            assert fresh(attempt).open_pause() is None
        # A's experts reach their sandboxes again, their work where they left it: the shell they left in
        # the browser terminal (it still has what they typed), and the workspace over SSH.
        again = in_browser_terminal(attempts[0], "history | grep -c typed-; cat score.txt\r", "0.70")
        assert "0.70" in again
        back = sshds[0].ssh(users.attempt_user_name(attempts[0].pk), key[0], "cat score.txt")
        assert back.stdout.strip() == "0.70", back

        # Each expert submits: the final run is scored on their host with the log so far, and their user is
        # retired there; A's after the outage, B's on B.
        for i, submitter in enumerate(attempts):
            assert submitter.user is not None
            trials_services.attempt_submit(attempt=fresh(submitter), by=submitter.user)
            final = ScoringJob.objects.filter(attempt=submitter, kind=ScoringJob.Kind.FINAL)
            agent = agents[0] if i < 2 else agents[1]
            done = final.filter(status=ScoringJob.Status.DONE)
            assert wait_for(done.exists, timeout=120), agent.said()
            assert ScoreLogEntry.objects.get(job=final.get()).score == float(f"0.7{i}")
            assert wait_for(partial(logged, agent, final.get()), timeout=10)
            assert fresh(submitter).status == Attempt.Status.ENDED
            if users.per_attempt():
                assert wait_for(partial(users._expired, users.attempt_user_name(submitter.pk)), timeout=10)
        # Then the site's worker ends their terminals and brings the recordings in through each host's gate
        # (here after the retirement, which the two race for): the browser terminal's and the SSH session's.
        for i, attempt in enumerate(attempts):
            assert trials_services.terminals_finish(attempt_id=attempt.pk) >= 2
            sessions = {s.number: s for s in TerminalSession.objects.filter(attempt=attempt)}
            assert f"typed-{30 + i}" in printed(sessions[1])
            ssh_sessions = [s for n, s in sessions.items() if n >= SSH_SESSION_BASE]
            assert any(f"typed-{40 + i}" in printed(s) for s in ssh_sessions), sorted(sessions)
    finally:
        for agent in agents:
            agent.stop()
        for attempt in attempts:
            end_attempt_sync(attempt.pk)
        stack.close()
    # No task failed on either host (a cut link may make the broker's connection log its loss, not a task).
    for agent in agents:
        assert "raised unexpected" not in agent.said(), agent.said()[-3000:]
        assert "SiteError" not in agent.said(), agent.said()[-3000:]
