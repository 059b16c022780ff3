"""Register a workstation and set its host up: print the set-up script, or run it (here, or over SSH as root)."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rebench_site.errors import ServiceError
from trials import services
from trials.models import Workstation
from trials.onboarding import workstation_setup_host
from workstation import setup

# How long the set-up may take (apt-get on a slow mirror).
SETUP_SECONDS = 1800
# The command's options by the service's field names, so a refusal names what to change.
OPTIONS = {
    "name": "NAME",
    "host": "--host",
    "gpu_count": "--gpus",
    "gpu_model": "--gpu-model",
    "backend": "--backend",
    "ssh_port": "--ssh-port",
    "ssh_user": "--ssh-user",
    "queue_name": "--queue",
}


class Command(BaseCommand):
    help = (
        "Register a GPU workstation and set its host up: Debian packages, the terminal holders' user, the "
        "protected group, the data folders, the worker as a systemd unit with its environment file, and for "
        "SSH hosts the host key in TERMINAL_SSH_KNOWN_HOSTS. For a workstation already registered, leave out "
        "--host to print or run its set-up again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the workstation's name (letters, digits, - and _)")
        parser.add_argument("--host", help="its host name or address, as the web host reaches it")
        parser.add_argument("--gpus", type=int, default=0, help="how many GPUs it has (default 0)")
        parser.add_argument("--gpu-model", default="", help='their model, e.g. "H100 80GB"')
        parser.add_argument("--backend", choices=Workstation.Backend.values, default=Workstation.Backend.SSH)
        parser.add_argument("--ssh-port", type=int, default=22)
        parser.add_argument("--ssh-user", default="", help="the user the web host logs in as (ssh backend)")
        parser.add_argument("--queue", default="", help="its worker's Celery queue (default ws.<name>)")
        then = parser.add_mutually_exclusive_group()
        then.add_argument("--print-setup", action="store_true", help="print the set-up script on stdout")
        then.add_argument(
            "--run-setup",
            action="store_true",
            help="run the set-up script: here for a local workstation, over `ssh root@<host> bash -s` for ssh; "
            "it issues the workstation's agent a new token and hands it in",
        )
        parser.add_argument(
            "--issue-token",
            action="store_true",
            help="with --print-setup: issue the agent a new token (the old one stops working) and print it on stderr",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name: str = options["name"]
        existing = Workstation.objects.filter(name=name).first()
        if existing is not None and options["host"] is None:
            if not (options["print_setup"] or options["run_setup"]):
                raise CommandError(f"{name} is registered already; --print-setup or --run-setup sets it up again.")
            workstation = existing
        elif options["host"] is None:
            raise CommandError(f"--host is needed to register {name}.")
        else:
            workstation = self._register(options)
        try:
            host = workstation_setup_host(workstation=workstation)
            script = setup.script(host)
        except setup.SetupError as exc:
            raise CommandError(f"No set-up script for {name}: {exc}") from None
        if options["print_setup"]:
            self.stdout.write(script, ending="")
            if options["issue_token"]:
                token = services.workstation_agent_token_issue(workstation=workstation, by=None)
                self.stderr.write(
                    "The agent's token, shown this once: run the script as\n"
                    f"  REBENCH_AGENT_TOKEN={token} bash setup.sh"
                )
            else:
                self.stderr.write(
                    "Run it as `REBENCH_AGENT_TOKEN=<token> bash setup.sh` with a token from --issue-token or the "
                    "workstation's page (not needed again if the host has one)."
                )
            if workstation.backend == Workstation.Backend.SSH:
                self.stderr.write(self._known_hosts_step(workstation))
        elif options["run_setup"]:
            token = services.workstation_agent_token_issue(workstation=workstation, by=None)
            # A line before the script, on its stdin: never on a command line another user's `ps` shows.
            self._run(workstation, f"REBENCH_AGENT_TOKEN={token}\n{script}")
        else:
            self.stdout.write(
                f"Next: `manage.py workstation_add {name} --print-setup > setup.sh` and run it as root on "
                f"{workstation.host}, or `--run-setup` to run it from here."
            )

    def _register(self, options: dict[str, Any]) -> Workstation:
        try:
            workstation = services.workstation_register(
                name=options["name"],
                host=options["host"],
                gpu_count=options["gpus"],
                gpu_model=options["gpu_model"],
                queue_name=options["queue"],
                backend=options["backend"],
                ssh_port=options["ssh_port"],
                ssh_user=options["ssh_user"],
            )
        except ServiceError as exc:
            raise CommandError(f"{OPTIONS.get(exc.field, exc.field)}: {exc.message}") from None
        self.stderr.write(
            f"Registered {workstation.name} ({workstation.gpu_count} × {workstation.gpu_model or 'GPU'}, "
            f"queue {workstation.queue_name}); it shows offline until its worker's first heartbeat."
        )
        return workstation

    def _known_hosts_step(self, workstation: Workstation) -> str:
        known_hosts = settings.TERMINAL_SSH_KNOWN_HOSTS
        return (
            f"On this web host, record {workstation.host}'s SSH host key where the SSH backend checks it, and "
            f"compare its fingerprints with those the script prints there:\n"
            f"  ssh-keyscan -p {workstation.ssh_port} {workstation.host} >> {known_hosts}\n"
            f"  ssh-keygen -l -f {known_hosts}\n"
            f"(or `manage.py workstation_add {workstation.name} --run-setup`, which does it)"
        )

    def _run(self, workstation: Workstation, script: str) -> None:
        if workstation.backend == Workstation.Backend.LOCAL:
            argv = ["bash", "-s"]
        else:
            known_hosts = settings.TERMINAL_SSH_KNOWN_HOSTS
            try:
                fingerprints = setup.known_hosts_record(
                    host=workstation.host, port=workstation.ssh_port, known_hosts=known_hosts
                )
            except setup.SetupError as exc:
                raise CommandError(str(exc)) from None
            self.stderr.write(f"{workstation.host}'s SSH host keys, now in {known_hosts}:")
            for line in fingerprints:
                self.stderr.write(f"  {line}")
            argv = [
                "ssh",
                "-p",
                str(workstation.ssh_port),
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                f"UserKnownHostsFile={known_hosts}",
                f"root@{workstation.host}",
                "bash",
                "-s",
            ]
        try:
            result = subprocess.run(  # noqa: S603 - fixed programs; the script goes in on stdin
                argv, input=script, capture_output=True, text=True, timeout=SETUP_SECONDS, check=False, env=os.environ
            )
        except subprocess.TimeoutExpired:
            raise CommandError(f"The set-up of {workstation.name} took longer than {SETUP_SECONDS} s.") from None
        except OSError as exc:
            raise CommandError(f"Could not start {argv[0]}: {exc}") from None
        self.stdout.write(result.stdout, ending="")
        self.stderr.write(result.stderr, ending="")
        if result.returncode != 0:
            where = "here" if workstation.backend == Workstation.Backend.LOCAL else f"on {workstation.host}"
            raise CommandError(f"The set-up script failed {where} (exit {result.returncode}); see its output above.")
