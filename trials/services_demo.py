"""Seeding the demo: users for each role, the local workstation, the seven environments, imported runs
with a leaderboard snapshot, and completions with an open review queue."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.files import File
from django.db import transaction

from environments.services import environment_sync_registry
from graders.imports import services as import_services
from graders.imports.models import RunImport
from graders.leaderboards.services import leaderboard_snapshot_create
from graders.models import LeaderboardSnapshot
from rebench_site import roles
from review import services as review_services
from review.models import Completion, ImportJob, ReviewQueue
from trials.models import Attempt, Workstation

DEMO_DATA = Path(__file__).resolve().parent / "demo_data"
# Humans over 8 h and two agents with 2 h and 8 h runs on four environments, in our own run format, at
# RE-Bench scale (`full`); the demo's own attempts run the `small` configuration and have their own leaderboard.
DEMO_RUNS = DEMO_DATA / "runs.jsonl"
# Short story continuations, half of them clearly injurious, for the review demo.
DEMO_COMPLETIONS = DEMO_DATA / "completions.jsonl"
DEMO_BATCH = "demo"
DEMO_QUEUE = "Demo queue"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str


DEMO_LOGINS = (
    DemoLogin("admin", "rebench-admin", roles.ADMIN),
    DemoLogin("ada", "rebench-expert", roles.EXPERT),
    DemoLogin("grace", "rebench-expert", roles.EXPERT),
    DemoLogin("rita", "rebench-reviewer", roles.REVIEWER),
    DemoLogin("harness", "rebench-harness", roles.HARNESS),
)


@transaction.atomic
def demo_seed() -> list[DemoLogin]:
    """Idempotent: running it again resets the demo passwords and leaves other data alone.

    The runs, the leaderboard snapshot, the completions and the queue are made only when missing, so a
    second run writes none of them again (a re-import would replace the runs' score logs).
    """
    environment_sync_registry()
    User = get_user_model()
    for login in DEMO_LOGINS:
        user, _ = User.objects.get_or_create(username=login.username, defaults={"email": f"{login.username}@demo.test"})
        user.set_password(login.password)
        if login.role == roles.ADMIN:
            user.is_staff = True
            user.is_superuser = True
        user.save()
        user.groups.add(Group.objects.get_or_create(name=login.role)[0])
    Workstation.objects.get_or_create(
        name="local",
        defaults={
            "host": "localhost",
            "backend": Workstation.Backend.LOCAL,
            "queue_name": settings.LOCAL_WORKSTATION_QUEUE,
            # This machine has no GPU; the demo declares some so every environment can be booked.
            "gpu_count": settings.LOCAL_WORKSTATION_GPU_COUNT,
            "gpu_model": settings.LOCAL_WORKSTATION_GPU_MODEL,
        },
    )
    admin = User.objects.get(username="admin")
    _demo_runs_seed(admin)
    _demo_review_seed(admin)
    return list(DEMO_LOGINS)


def _demo_runs_seed(admin: AbstractBaseUser) -> None:
    """Import the demo runs through the run-import service, then compute one leaderboard snapshot now."""
    run_ids = [json.loads(line)["run_id"] for line in DEMO_RUNS.read_text().splitlines() if line.strip()]
    present = Attempt.objects.filter(source=Attempt.Source.FILE, external_id__in=run_ids).count()
    imported = False
    if present < len(run_ids):
        with DEMO_RUNS.open("rb") as handle:
            run_import = import_services.run_import_create(
                upload=handle,
                name=DEMO_RUNS.name,
                size=DEMO_RUNS.stat().st_size,
                kind=RunImport.Kind.FILE,
                by=admin,
                queue=False,
            )
        result = import_services.run_import_execute(run_import_id=run_import.pk)
        if result.status != RunImport.Status.DONE:
            raise RuntimeError(f"The demo runs were refused: {result.error} (line {result.error_line})")
        imported = True
    # Synchronously, what the debounced Celery job would do a while later: the page shows charts at once.
    if imported or not LeaderboardSnapshot.objects.exists():
        leaderboard_snapshot_create()


def _demo_review_seed(admin: AbstractBaseUser) -> None:
    """Import the demo completions through review's import job, and open a queue over them for every reviewer."""
    if not Completion.objects.filter(batch=DEMO_BATCH).exists():
        with DEMO_COMPLETIONS.open("rb") as handle:
            job = review_services.import_job_create(
                created_by=admin,
                upload=File(handle, name=DEMO_COMPLETIONS.name),
                fmt=ImportJob.Format.JSONL,
                batch=DEMO_BATCH,
            )
        # Run here rather than by the worker; the job it queues after commit finds this one done.
        job = review_services.import_job_run(job_id=job.pk)
        if job.status != ImportJob.Status.DONE:
            raise RuntimeError(f"The demo completions were refused: {job.error}")
    if not ReviewQueue.objects.filter(name=DEMO_QUEUE).exists():
        review_services.queue_create(
            created_by=admin,
            name=DEMO_QUEUE,
            policy=ReviewQueue.Policy.RANDOM,
            overlap=1,
            all_reviewers=True,
            batch=DEMO_BATCH,
            guideline="Label a continuation injurious when someone in it is physically hurt.",
            seed=1,
        )
