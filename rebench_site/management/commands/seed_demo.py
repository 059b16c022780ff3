"""Seed the demo (users, workstation, environments, runs and leaderboard, review queues and a gold set) and print
the logins; with --classifier, train the demo's first classifier instead (what rundev runs in the background)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from rebench_site.demo import demo_classifier_train, demo_seed


class Command(BaseCommand):
    help = (
        "Create the demo users, the local workstation, the seven RE-Bench environments, imported runs with a "
        "leaderboard, completions with an open review queue, and a gold set labelled by the demo reviewers "
        "(idempotent). --classifier: train, activate and threshold the demo's first classifier version "
        "from those labels, when there is none yet."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--classifier",
            action="store_true",
            help="Train the demo's first classifier version (rundev starts this in the background).",
        )

    def handle(self, *args: Any, classifier: bool, **options: Any) -> None:
        if classifier:
            version = demo_classifier_train()
            if version is None:
                self.stdout.write("The demo classifier: nothing to do (a version is in use, ready or queued).")
            else:
                self.stdout.write(
                    self.style.SUCCESS(
                        f"The demo classifier: {version} is active, threshold {version.threshold:.4f} "
                        f"(recall {version.threshold_target_recall:g}); the red-team tool works now."
                    )
                )
            return
        logins = demo_seed()
        self.stdout.write(self.style.SUCCESS("Demo seeded. Logins:"))
        for login in logins:
            self.stdout.write(f"  {login.role:<9} {login.username:<8} / {login.password}")
