"""Run the app on the embedded defaults: the ASGI server and a Celery worker with beat, until Ctrl-C; and, once,
the training of the demo's first classifier in the background."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from rebench_site.demo import DEMO_LOGINS, demo_classifier_wanted


def demo_classifier_command() -> list[str]:
    """`seed_demo --classifier` in a process of its own, niced where `nice` exists: training is CPU-bound
    for tens of seconds, and the web server's first pages come first."""
    command = [sys.executable, str(settings.BASE_DIR / "manage.py"), "seed_demo", "--classifier"]
    nice = shutil.which("nice")
    return [nice, "-n", "10", *command] if nice else command


def site_env(environ: Mapping[str, str], host: str, port: int) -> dict[str, str]:
    """The children's environment: SITE_URL (and so the API address every shell's `task` calls
    through its sandbox) is where this server listens, unless the operator set it (a proxy in front).
    Without it, a server on another port would send `task` and its token to whatever holds 8000."""
    env = dict(environ)
    if not env.get("SITE_URL"):
        reachable = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 - a listen-all address, not a bind
        if ":" in reachable:
            reachable = f"[{reachable}]"
        env["SITE_URL"] = f"http://{reachable}:{port}"
    return env


class Command(BaseCommand):
    help = "Start uvicorn (HTTP + WebSocket) and a Celery worker (+ beat) for the local workstation."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        bin_dir = os.path.dirname(sys.executable)
        queues = f"celery,{settings.LOCAL_WORKSTATION_QUEUE}"
        commands = {
            "web": [
                os.path.join(bin_dir, "uvicorn"), "rebench_site.asgi:application", "--host", host, "--port", str(port),
            ],
            "worker": [
                os.path.join(bin_dir, "celery"), "-A", "rebench_site", "worker", "-B",
                "--pool", "threads", "--concurrency", "4", "-Q", queues, "-l", "INFO",
                "-s", str(settings.DATA_DIR / "celerybeat-schedule"),
            ],
        }  # fmt: skip
        env = site_env(os.environ, host, port)
        procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}  # noqa: S603 - our own binaries
        # One-shot, unlike the two above: its end (done, or failed and said why) stops nothing.
        trainer = subprocess.Popen(demo_classifier_command(), env=env) if demo_classifier_wanted() else None  # noqa: S603
        # The local workstation shows offline until its first heartbeat: ask for one now, not in 30 s.
        from trials.tasks import workstations_ping

        workstations_ping.delay()
        url = f"http://{host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"\nrebench_site is running at {url}  (Ctrl-C stops everything)"))
        self.stdout.write(f"Database: {settings.DATABASES['default']['NAME']}; broker: {settings.CELERY_BROKER_URL}")
        for login in DEMO_LOGINS:
            self.stdout.write(f"  {login.role:<9} {login.username:<8} / {login.password}")
        if trainer is not None:
            self.stdout.write(
                "The demo's first classifier is training in the background: the red-team tool, the threshold "
                "page and the dashboard work once it says so (under a minute)."
            )
        self.stdout.write("")
        stopping = False

        def stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with {proc.returncode}; stopping.")
                        stopping = True
                if trainer is not None and trainer.poll() is not None:
                    if trainer.returncode != 0:
                        self.stderr.write(
                            f"Training the demo classifier failed (exit {trainer.returncode}, see above); "
                            "the site runs on, and an admin can train one at /review/classifier/."
                        )
                    trainer = None
                time.sleep(0.5)
        finally:
            if trainer is not None and trainer.poll() is None:
                procs["demo classifier"] = trainer
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for proc in procs.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
            self.stdout.write("Stopped.")
