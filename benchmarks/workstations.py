"""Scoring across two workstation hosts: the agent (no database, the site over HTTP) against the former worker.

    .venv/bin/python benchmarks/workstations.py [--attempts 40] [--minutes 5] [--interval 60]

Run as root, with PostgreSQL and Redis (BENCH_PG, BENCH_REDIS). Two workstations, each on a host of
its own (a network namespace whose only way out is a link to this machine, as in
tests/graders/test_workstations_across_hosts.py), share the attempts; every attempt asks for a
score every `--interval` seconds, staggered, for `--minutes`. The web side is uvicorn on this
machine with the site's database. The same work runs twice in one run:

- `agent`: each host runs the workstation agent (`celery -A workstation.agent`, no database URL),
  which asks the site for each job's spec and hands the outcome back over the agent API; only the
  broker and the site are forwarded to its host;
- `worker` (the peer: the design before the agent): a worker per workstation with the site's
  database URL (`celery -A rebench_site`), calling the services itself, on this machine.

Printed for each: scoring jobs run, queue-to-start and queue-to-done p50/p99 (the job's created_at
to its started_at, and to its finished_at), requests refused because the attempt's previous job was
still unfinished, and CPU seconds per job of the web server (uvicorn) and of the workstations'
workers; then the ratios agent / worker. The scorer is the test package `grading_test_ok` (it
prints 0.5): what is measured is the path around a scorer, not a scorer. A warm-up round (one job
per attempt, by the former worker) first makes every attempt's user and workspace, so neither side
pays that. The machine is shared: compare within one run.

While the agent's side runs, experts type over SSH (benchmarks/ssh_echo.py; `--no-ssh` skips it):
each host runs an OpenSSH sshd of its own with the project's drop-in, and every attempt has two
interactive sessions through it from this machine, one streaming output and one typed into a key
at a time, beside a plain user's shell on the same sshd typed into the same way (the peer). Printed:
keystroke echo p50/p99 of each and the ratio. The agent's measured minutes start once those sessions
are open (every attempt's terminal streaming, as the measure is defined), not while 120 of them open
at once on this machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import ssh_echo  # noqa: E402 - importable once ROOT is on the path

WORK = ROOT / "data" / "benchmarks" / "workstations"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/13")
DB = "rebench_bench_workstations"
SITE_ONLY = ("DATABASE_URL", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "REDIS_URL")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its waited-for children, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def site_environment() -> dict[str, str]:
    WORK.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "DATABASE_URL": f"{PG}/{DB}",
        "CELERY_BROKER_URL": REDIS,
        "REDIS_URL": "",
        "DEBUG": "true",
        "ALLOWED_HOSTS": "*",
        "DATA_DIR": str(WORK / "data"),
        "GRADING_PACKAGE_DIRS": str(ROOT / "tests" / "graders" / "packages"),
        "SCORING_HEARTBEAT_SECONDS": "5",
        "CLASSIFIER_WARM_ON_START": "false",
    }


def database_fresh() -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()


def start(name: str, argv: list[str], env: dict[str, str]) -> Proc:
    out = (WORK / f"{name}.log").open("wb")
    return Proc(name, subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))


def worker_argv(app: str, queue: str, name: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queue, "--pool", "solo",
        "--without-mingle", "--without-gossip", "--loglevel", "WARNING", "--hostname", f"{name}@bench",
    ]  # fmt: skip


def drive(attempts: list[Any], minutes: float, interval: float) -> tuple[list[str], int]:
    """Each attempt asks for a score every `interval` s, staggered, for `minutes`; the jobs and the refusals."""
    from graders import services
    from rebench_site.errors import ServiceError

    jobs: list[str] = []
    refused = 0
    begin = time.monotonic()
    end = begin + minutes * 60
    offsets = [interval * i / len(attempts) for i in range(len(attempts))]
    rounds = [0] * len(attempts)
    while time.monotonic() < end:
        now = time.monotonic() - begin
        for i, attempt in enumerate(attempts):
            if now >= offsets[i] + rounds[i] * interval:
                rounds[i] += 1
                try:
                    jobs.append(str(services.scoring_job_request(attempt=attempt, by=attempt.user).pk))
                except ServiceError:
                    refused += 1  # its previous job is unfinished
        time.sleep(0.05)
    return jobs, refused


def wait_done(jobs: list[str], timeout: float) -> None:
    from graders.models import ScoringJob

    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if not ScoringJob.objects.filter(pk__in=jobs, finished_at__isnull=True).exists():
            return
        time.sleep(0.5)
    log(f"{ScoringJob.objects.filter(pk__in=jobs, finished_at__isnull=True).count()} jobs unfinished")


def figures(jobs: list[str], refused: int, server_cpu: float, workers_cpu: float) -> dict[str, float]:
    from graders.models import ScoringJob

    done = list(ScoringJob.objects.filter(pk__in=jobs, finished_at__isnull=False))
    to_start = [(j.started_at - j.created_at).total_seconds() * 1000 for j in done if j.started_at]
    to_done = [(j.finished_at - j.created_at).total_seconds() * 1000 for j in done if j.finished_at]
    n = max(len(done), 1)
    return {
        "jobs": len(done),
        "unfinished": len(jobs) - len(done),
        "refused": refused,
        "start_p50_ms": percentile(to_start, 0.5),
        "start_p99_ms": percentile(to_start, 0.99),
        "done_p50_ms": percentile(to_done, 0.5),
        "done_p99_ms": percentile(to_done, 0.99),
        "server_cpu_per_job_s": server_cpu / n,
        "workers_cpu_per_job_s": workers_cpu / n,
        "mean_done_ms": statistics.fmean(to_done) if to_done else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attempts", type=int, default=40)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--interval", type=float, default=60)
    parser.add_argument("--no-ssh", action="store_true", help="skip the SSH sessions and their echo figures")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("Run as root: the hosts are network namespaces and the scorer switches users.")

    shutil.rmtree(WORK, ignore_errors=True)
    env = site_environment()
    database_fresh()
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "rebench_site.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from tests import factories
    from tests.graders.conftest import package_environment
    from tests.multihost.hosts import Forwarder, Host
    from trials import services as trials_services

    environment = package_environment("grading_test_ok", gpus_min=1, gpus_max=1)
    half = (args.attempts + 1) // 2
    stations = [
        factories.WorkstationFactory.create(name="bench-a", gpu_count=half),
        factories.WorkstationFactory.create(name="bench-b", gpu_count=args.attempts - half),
    ]
    attempts = [
        factories.AttemptFactory.create(
            reservation__environment=environment,
            reservation__workstation=stations[i % 2],
            reservation__gpus=[i // 2],
        )
        for i in range(args.attempts)
    ]
    site_port = free_port()
    procs: list[Proc] = []
    hosts = [Host("bencha", 1), Host("benchb", 2)]
    forwarders: list[Forwarder] = []
    results: dict[str, dict[str, float]] = {}
    echo: dict[str, Any] = {}
    ssh_load: ssh_echo.Load | None = None
    try:
        server = start(
            "uvicorn",
            [sys.executable, "-m", "uvicorn", "rebench_site.asgi:application", "--port", str(site_port)],
            env,
        )
        procs.append(server)
        time.sleep(3)
        log(f"{args.attempts} attempts on two workstations; load {os.getloadavg()[0]:.1f}")

        # Warm-up: every attempt's user and workspace, by the former worker (not measured).
        warm = [
            start(f"warm-{ws.name}", worker_argv("rebench_site", ws.queue_name, f"w{ws.name}"), env) for ws in stations
        ]
        jobs, _ = drive(attempts, minutes=0.02, interval=1)
        wait_done(jobs, timeout=600)
        for proc in warm:
            proc.stop()

        for side in ("worker", "agent"):
            if side == "worker":
                workers = [
                    start(f"worker-{ws.name}", worker_argv("rebench_site", ws.queue_name, ws.name), env)
                    for ws in stations
                ]
            else:
                workers = []
                redis_host, redis_port = REDIS.split("//")[1].split("/")[0].split(":")
                for host, ws in zip(hosts, stations, strict=True):
                    host.up()
                    broker = Forwarder(host.gateway, redis_host, int(redis_port))
                    site = Forwarder(host.gateway, "127.0.0.1", site_port)
                    forwarders += [broker, site]
                    token = trials_services.workstation_agent_token_issue(workstation=ws, by=None)
                    agent_env = {k: v for k, v in env.items() if k not in SITE_ONLY and not k.startswith("DB_")}
                    agent_env.update(
                        DJANGO_SETTINGS_MODULE="rebench_site.agent_settings",
                        CELERY_BROKER_URL=f"redis://{host.gateway}:{broker.port}/{REDIS.rsplit('/', 1)[1]}",
                        WORKSTATION_SITE_URL=f"http://{host.gateway}:{site.port}",
                        WORKSTATION_AGENT_TOKEN=token,
                    )
                    workers.append(
                        start(
                            f"agent-{ws.name}",
                            host.argv(*worker_argv("workstation.agent", ws.queue_name, ws.name)),
                            agent_env,
                        )
                    )
            procs += workers
            time.sleep(3)
            if side == "agent" and not args.no_ssh:
                log("SSH: an sshd per host, two sessions per attempt and a plain shell's beside each")
                ssh_load = ssh_echo.start(hosts, stations, attempts, args.minutes * 60, WORK)
                # The measured minutes are the issue's: every attempt with its terminals open and streaming.
                log(f"SSH: {ssh_load.wait_ready(timeout=120)}")
            server_before = cpu_seconds(server.popen.pid)
            workers_before = sum(cpu_seconds(w.popen.pid) for w in workers)
            log(f"{side}: {args.minutes} min, a score per attempt every {args.interval} s")
            jobs, refused = drive(attempts, args.minutes, args.interval)
            wait_done(jobs, timeout=300)
            server_cpu = cpu_seconds(server.popen.pid) - server_before
            workers_cpu = sum(cpu_seconds(w.popen.pid) for w in workers) - workers_before
            results[side] = figures(jobs, refused, server_cpu, workers_cpu)
            if ssh_load is not None and side == "agent":
                echo = ssh_load.results(timeout=180)
            for proc in workers:
                proc.stop()
        log(f"load at the end {os.getloadavg()[0]:.1f}")
    finally:
        for proc in procs:
            proc.stop()
        if ssh_load is not None:  # after the agents: one still working could bring a sandbox back up
            ssh_load.stop()
        for forwarder in forwarders:
            forwarder.close()
        for host in hosts:
            host.down()

    keys = list(results["worker"])
    print(f"{'figure':<24} {'worker (peer)':>14} {'agent':>12} {'agent/worker':>13}")
    for key in keys:
        peer, ours = results["worker"][key], results["agent"][key]
        ratio = ours / peer if peer else float("nan")
        print(f"{key:<24} {peer:>14.3f} {ours:>12.3f} {ratio:>13.2f}")
    if echo:
        ours, plain = echo["latencies"]["ours"], echo["latencies"]["plain"]
        print(f"\nSSH keystroke echo under that load (ms), sessions ready {echo['ready']}, lost {echo['failed']}")
        print(f"{'figure':<24} {'plain sshd (peer)':>18} {'attempt':>10} {'attempt/plain':>14}")
        for name, q in (("echo_p50_ms", 0.5), ("echo_p99_ms", 0.99)):
            peer, value = percentile(plain, q), percentile(ours, q)
            print(f"{name:<24} {peer:>18.2f} {value:>10.2f} {value / peer if peer else float('nan'):>14.2f}")
        print(f"{'keystrokes timed':<24} {len(plain):>18} {len(ours):>10}")


if __name__ == "__main__":
    main()
