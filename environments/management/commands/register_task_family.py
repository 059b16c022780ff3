"""Register a METR Task Standard task family by path: its tasks become bookable environments."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from environments import task_standard
from rebench_site.errors import ServiceError


class Command(BaseCommand):
    help = "Register (or refresh) a METR Task Standard family: <family>/<family>.py with TaskFamily."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="the family's directory, named like the family")

    def handle(self, *args: Any, path: str, **options: Any) -> None:
        try:
            family = task_standard.task_family_register(path=path)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        for task in family.tasks.select_related("environment"):
            env = task.environment
            self.stdout.write(
                f"{env.slug}: {env.gpus_label} GPU {env.gpu_model or '-'}, {env.cpus} CPU, {env.memory_gb} GB, "
                f"scoring {task.scoring}, scores {'visible' if env.scores_visible else 'hidden'}"
            )
        self.stdout.write(
            f"TaskFamily.install for version {family.installed_version[:8]}: {family.install_output or 'run before'}"
            f"{f' ({family.installed_at:%Y-%m-%d %H:%M})' if family.installed_at else ''}"
        )
        self.stdout.write(self.style.SUCCESS(f"Registered {family.name} ({family.tasks.count()} tasks)."))
