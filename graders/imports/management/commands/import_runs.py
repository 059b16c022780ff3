"""`manage.py import_runs <path> [--format ...]`: import a file of runs now, in this process, all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from graders.imports import services
from graders.imports.models import RunImport
from rebench_site.errors import ServiceError


class Command(BaseCommand):
    help = "Import agent or human runs: an Inspect eval log (.eval, .json), METR runs JSONL, or our JSONL/CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", dest="kind", choices=RunImport.Kind.values, default=RunImport.Kind.AUTO)
        parser.add_argument(
            "--configuration",
            default="full",
            help="The scale of rows that don't name one: full (RE-Bench's tasks, the default), small or a custom name.",
        )
        parser.add_argument("--user", help="Username the import is recorded under (an admin); none by default.")

    def handle(self, *args: Any, path: Path, kind: str, configuration: str, user: str | None, **options: Any) -> None:
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        by = None
        if user:
            by = get_user_model().objects.filter(username=user).first()
            if by is None:
                raise CommandError(f"No such user: {user}")
        try:
            services.refuse_if_too_large(path.stat().st_size)  # before a byte is copied
            with path.open("rb") as handle:
                run_import = services.run_import_create(
                    upload=handle,
                    name=path.name,
                    size=path.stat().st_size,
                    kind=kind,
                    configuration=configuration,
                    by=by,
                    queue=False,
                )
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        result = services.run_import_execute(run_import_id=run_import.pk)
        if result.status != RunImport.Status.DONE:
            where = f" (line {result.error_line}, field {result.error_field})" if result.error_line else ""
            raise CommandError(f"Import {result.pk} refused{where}: {result.error} Nothing was written.")
        self.stdout.write(
            f"Import {result.pk} ({result.detected_kind}): {result.runs_created} new runs, "
            f"{result.runs_updated} updated, {result.entries_written} score-log entries."
        )
