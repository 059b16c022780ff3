"""The METR Task Standard adapter: register a family by path, run its methods in subprocesses, score via a worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import Client

from environments import packages, task_standard
from environments.models import Environment, TaskFamily, TaskStandardTask
from graders import services
from graders.models import AttemptScore, ScoreLogEntry, ScoringJob
from rebench_site.errors import ServiceError
from tests import factories
from tests.trials.celery_support import BROKERS, broker_url, running_worker, using_broker, wait_for
from tests.workspace_support import put
from trials import services as trials_services
from trials.models import Attempt
from workstation import layout
from workstation.agent.tasks import scoring_job_run

FAMILIES = Path(__file__).resolve().parent / "task_families"

pytestmark = pytest.mark.timeout(120)


def attempt_at(slug: str) -> Attempt:
    environment = Environment.objects.get(slug=slug)
    reservation = factories.ReservationFactory.create(
        expert=factories.expert(username="ada"), environment=environment, workstation__name="ts-box"
    )
    return factories.AttemptFactory.create(reservation=reservation)


def test_registering_a_family_makes_its_tasks_bookable_environments_with_the_manifests_resources(db) -> None:
    call_command("register_task_family", str(FAMILIES / "good_family"))
    family = TaskFamily.objects.get(name="good_family")
    assert family.standard_version == "0.3.0"
    assert family.required_environment_variables == ["REBENCH_GOOD_FAMILY_FLAG"]
    easy = Environment.objects.get(slug="good_family-easy")
    hard = Environment.objects.get(slug="good_family-hard")
    assert easy.source == Environment.Source.TASK_STANDARD
    assert (easy.gpus_min, easy.gpus_max, easy.cpus, easy.memory_gb, easy.scores_visible) == (0, 0, 4, 16, True)
    assert (hard.gpus_min, hard.gpus_max, hard.gpu_model, hard.cpus, hard.memory_gb) == (1, 2, "H100", 13, 100)
    assert hard.scores_visible is False
    task = TaskStandardTask.objects.get(environment=hard)
    assert task.permissions == ["full_internet"]
    assert task.instructions.startswith("Say good luck.")
    assert task.scoring == "intermediate"
    assert packages.find("good_family-hard").instructions == task.instructions

    call_command("register_task_family", str(FAMILIES / "good_family"))  # again: refreshed, not duplicated
    assert TaskStandardTask.objects.filter(family__name="good_family").count() == 2


@pytest.mark.parametrize(
    ("family", "message"),
    [
        ("missing_family", "defines no TaskFamily class"),
        ("both_family", "both score and intermediate_score"),
        ("raising_family", "describe raised ValueError: the task data is missing"),
        ("no_such_family", "is not a directory"),
    ],
)
def test_a_family_that_breaks_the_standard_is_refused_with_the_reason(db, family: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("register_task_family", str(FAMILIES / family))
    assert not TaskFamily.objects.exists()
    assert not Environment.objects.filter(source=Environment.Source.TASK_STANDARD).exists()


def test_a_bad_gpu_range_in_the_manifest_is_refused(db, tmp_path: Path) -> None:
    family = tmp_path / "end_family"
    family.mkdir()
    (family / "end_family.py").write_text((FAMILIES / "end_family" / "end_family.py").read_text())
    (family / "manifest.yaml").write_text("resources:\n  gpu:\n    count_range: [2, 1]\n")
    with pytest.raises(ServiceError, match=r"count_range \[2, 1\] is not a range"):
        task_standard.task_family_register(path=str(family))


def test_a_family_scored_at_the_end_refuses_intermediate_scores_and_scores_the_submission(
    db, grading_dirs: Path, django_capture_on_commit_callbacks
) -> None:
    task_standard.task_family_register(path=str(FAMILIES / "end_family"))
    attempt = attempt_at("end_family-main")
    assert attempt.user is not None
    with pytest.raises(ServiceError, match="scored once, when the attempt ends"):
        services.scoring_job_request(attempt=attempt, by=attempt.user)
    services.workspace_prepare(attempt=attempt)
    put(layout.workspace(attempt.pk), "submission.txt", "42\n")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        trials_services.attempt_submit(attempt=attempt, by=attempt.user)
    assert len(callbacks) >= 1
    job = services.scoring_job_queue_final(attempt_id=attempt.pk)
    assert job is not None
    assert scoring_job_run(str(job.pk)) == ScoringJob.Status.DONE
    entry = ScoreLogEntry.objects.get(job=job)
    assert entry.score == 1.0, entry.message
    assert AttemptScore.objects.get(attempt=attempt).raw == 1.0


def test_a_method_that_raises_while_scoring_is_a_nan_with_its_traceback(
    db, grading_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REBENCH_GOOD_FAMILY_FLAG", "on")
    task_standard.task_family_register(path=str(FAMILIES / "good_family"))
    attempt = attempt_at("good_family-easy")
    services.workspace_prepare(attempt=attempt)
    put(layout.workspace(attempt.pk), "answer.txt", "not a number")
    job = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test")
    scoring_job_run(str(job.pk))
    entry = ScoreLogEntry.objects.get(job=job)
    assert entry.score is None
    assert "could not convert string to float" in entry.details["stderr_tail"]


@pytest.fixture(params=BROKERS)
def app(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Celery]:
    with using_broker(broker_url(request.param, tmp_path)) as app:
        yield app


@pytest.mark.django_db(transaction=True)
def test_a_task_family_end_to_end_through_a_real_worker(
    app: Celery, grading_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REBENCH_GOOD_FAMILY_FLAG", "on")
    task_standard.task_family_register(path=str(FAMILIES / "good_family"))
    attempt = factories.preparing(attempt_at("good_family-easy"))
    workspace = layout.workspace(attempt.pk)
    client = Client()
    assert attempt.user is not None
    client.force_login(attempt.user)

    def score(answer: str) -> ScoreLogEntry:
        put(workspace, "answer.txt", answer)
        job_id = client.post(f"/api/attempts/{attempt.pk}/score/").json()["job"]
        assert wait_for(lambda: ScoreLogEntry.objects.filter(job_id=job_id).exists(), timeout=60)
        return ScoreLogEntry.objects.get(job_id=job_id)

    with running_worker(app, queues=[attempt.workstation.queue_name]):
        with transaction.atomic():
            services.workspace_prepare_queue(attempt)
        assert wait_for(lambda: (workspace / "start.txt").exists(), timeout=60)
        assert (workspace / "start.txt").read_text() == "hello on"  # TaskFamily.start, with its variable
        # The starting solution is scored once the workspace is ready; here it has no answer yet.
        assert wait_for(lambda: ScoreLogEntry.objects.filter(attempt=attempt).exists(), timeout=60)
        start = ScoreLogEntry.objects.get(attempt=attempt)
        assert start.score is None
        assert "no answer.txt" in start.message

        first = score("0.4")
        assert first.score == 0.4
        assert first.message == '{"read": "answer.txt"}'
        assert first.details["task"] == {"greeting": "hello"}
        assert score("0.9").score == 0.9
        assert score("0.2").score == 0.2

        trials_services.attempt_submit(attempt=attempt, by=attempt.user)
        assert wait_for(lambda: AttemptScore.objects.filter(attempt=attempt, is_final=True).exists(), timeout=60)

    final = ScoreLogEntry.objects.get(job__kind="final", attempt=attempt)
    # aggregate_scores: the max of 0.4, 0.9, 0.2 and the final 0.2
    assert final.score == 0.9, (final.message, final.details)
    assert final.details["last_intermediate"]["score"] == 0.2
    assert AttemptScore.objects.get(attempt=attempt).raw == 0.9
    # Teardown runs with the final scoring, over the read-only snapshot the trusted half gets: its
    # write fails there (noted, the score kept) and never reaches the live workspace.
    assert "Permission denied" in final.details["teardown_error"]
    assert not (workspace / "teardown.txt").exists()


def test_the_admin_registers_a_family_on_its_page_and_experts_cannot(db, admin_user, expert) -> None:
    admin = Client()
    admin.force_login(admin_user)
    response = admin.post("/environments/task-families/", {"path": str(FAMILIES / "end_family")}, follow=True)
    assert response.status_code == 200
    assert "Registered end_family: main." in response.content.decode()
    assert "end_family-main" in response.content.decode()
    bad = admin.post("/environments/task-families/", {"path": str(FAMILIES / "both_family")})
    assert bad.status_code == 400
    assert "both score and intermediate_score" in bad.content.decode()
    other = Client()
    other.force_login(expert)
    assert other.get("/environments/task-families/").status_code == 403
    assert other.post("/environments/task-families/", {"path": str(FAMILIES / "good_family")}).status_code == 403
    assert not TaskFamily.objects.filter(name="good_family").exists()
