"""Say whether this machine can sandbox attempts, and why not; `--env` prints what `make run` must set to run anyway."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Check bubblewrap, user namespaces and cgroups: what every attempt's sandbox needs on this machine."
    # The system checks include this very check: run even when it fails.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--env",
            action="store_true",
            help="print SANDBOX_ALLOW_UNSAFE=true when the machine can't sandbox (for `make run`), nothing when it can",
        )

    def handle(self, *args: Any, env: bool = False, **options: Any) -> None:
        from workstation import capabilities

        report = capabilities.local_report(fresh=True)
        if env:
            if not report.ok and not settings.SANDBOX_ALLOW_UNSAFE:
                self.stdout.write("SANDBOX_ALLOW_UNSAFE=true")
                for problem in report.problems:
                    self.stderr.write(f"This machine can't sandbox attempts: {problem}")
                self.stderr.write("The demo runs WITHOUT a full sandbox (the admin pages say so in red).")
            return
        if report.ok:
            self.stdout.write(self.style.SUCCESS(f"This machine sandboxes attempts (cgroup v{report.cgroup_version})."))
            return
        for problem in report.problems:
            self.stderr.write(f"- {problem}")
        raise CommandError("This machine can't sandbox attempts: its workstation can't be booked.")
