"""Measure the active configuration's starting and reference raw scores of an environment package."""

from __future__ import annotations

import statistics
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from environments import measure, packages
from rebench_site.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Prepare fresh workspaces, score the starting and the reference solution with the package's scorer, "
        "print the raw scores (set ENVIRONMENT_CONFIGURATION to pick the scale); with --runs, each score's spread."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument(
            "--runs",
            type=int,
            default=1,
            help="measure this many times and print each score's median and spread (max − min): for wall-clock "
            "scores, whose constants carry their spread",
        )

    def handle(self, *args: Any, slug: str, runs: int = 1, **options: Any) -> None:
        if runs < 1:
            raise CommandError("--runs must be at least 1.")
        self.stdout.write(f"{slug} ({packages.active_configuration_name(slug)})")
        scores: dict[str, list[float]] = {}
        for run in range(runs):
            try:
                results = measure.measure(slug)
            except (ServiceError, RuntimeError) as exc:
                raise CommandError(str(exc)) from exc
            for m in results:
                prefix = f"run {run + 1}: " if runs > 1 else ""
                self.stdout.write(f"{prefix}{m.label}: {m.score!r} in {m.seconds} s: {m.message}")
                if m.score is not None:
                    scores.setdefault(m.label, []).append(m.score)
        if runs > 1:
            for label, values in scores.items():
                spread = max(values) - min(values)
                self.stdout.write(
                    f"{label}: median {statistics.median(values)!r}, spread {spread!r} "
                    f"({min(values)!r} to {max(values)!r}, {len(values)} of {runs} runs scored)"
                )
