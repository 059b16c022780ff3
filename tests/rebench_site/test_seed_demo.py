"""The demo seed: logins for every role, imported runs with a leaderboard, a review queue rita can start on,
a gold set labelled by the demo reviewers, and the first classifier trained from it after start."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

from environments.services import environment_configuration_for
from graders.leaderboards.models import LeaderboardSnapshot
from graders.leaderboards.selectors import leaderboard_latest
from graders.models import AttemptScore, ScoreLogEntry
from rebench_site import roles
from rebench_site.demo import (
    DEMO_GOLD_BATCH,
    DEMO_GOLD_QUEUE,
    DEMO_LOGINS,
    DEMO_QUEUE,
    DEMO_TARGET_RECALL,
    demo_classifier_train,
    demo_classifier_wanted,
    demo_seed,
)
from review import services as review_services
from review.classifier import selectors as classifier_selectors
from review.classifier import services as classifier_services
from review.classifier.models import ClassifierVersion
from review.models import Completion, Label, ReviewQueue
from trials.models import Attempt

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _row_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def test_seeding_twice_changes_no_row_count_and_rewrites_no_score() -> None:
    demo_seed()
    counts = _row_counts()
    scores = sorted(AttemptScore.objects.values_list("pk", "raw"))
    entries = sorted(ScoreLogEntry.objects.values_list("pk", flat=True))
    snapshots = list(LeaderboardSnapshot.objects.values_list("pk", flat=True))

    demo_seed()

    assert _row_counts() == counts
    assert sorted(AttemptScore.objects.values_list("pk", "raw")) == scores
    assert sorted(ScoreLogEntry.objects.values_list("pk", flat=True)) == entries
    assert list(LeaderboardSnapshot.objects.values_list("pk", flat=True)) == snapshots


def test_the_seed_prints_a_login_for_every_role_and_each_one_works(client) -> None:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    printed = out.getvalue()
    assert {login.role for login in DEMO_LOGINS} == set(roles.ROLES)
    for login in DEMO_LOGINS:
        assert f"{login.username:<8} / {login.password}" in printed
        user = get_user_model().objects.get(username=login.username)
        assert roles.has_role(user, login.role)
        # Through the login page, as a person would (the lockout backend needs the request, which
        # client.login() doesn't pass).
        response = client.post("/accounts/login/", {"username": login.username, "password": login.password})
        assert response.status_code == 302, response.content[:500]
        assert client.session["_auth_user_id"] == str(user.pk)
        client.logout()


def test_the_demo_runs_are_imported_and_a_leaderboard_snapshot_shows_humans_and_agents() -> None:
    demo_seed()
    runs = Attempt.objects.filter(source=Attempt.Source.FILE, external_id__startswith="demo-")
    humans = runs.filter(participant_kind=Attempt.ParticipantKind.HUMAN)
    agents = runs.filter(participant_kind=Attempt.ParticipantKind.AGENT)
    assert humans.count() >= 8
    assert agents.count() >= 8
    assert set(agents.values_list("agent_name", flat=True)) == {"claude-3-5-sonnet", "o1-preview"}
    assert {limit.total_seconds() for limit in agents.values_list("time_limit", flat=True)} == {7200, 28800}
    assert 3 <= runs.values("environment").distinct().count() <= 4
    assert ScoreLogEntry.objects.filter(attempt__in=humans).count() > 3 * humans.count()

    snapshot = leaderboard_latest()
    assert snapshot is not None
    assert snapshot.runs == runs.count()
    kinds = {group["kind"] for group in snapshot.data["groups"]}
    assert kinds == {"human", "agent"}
    assert snapshot.data["curves"]


def test_rita_is_handed_an_item_of_the_demo_queue_at_once() -> None:
    demo_seed()
    rita = get_user_model().objects.get(username="rita")
    queue = ReviewQueue.objects.get(name=DEMO_QUEUE)
    assert queue.is_open
    assert queue.all_reviewers
    assert queue.overlap == 1
    assert queue.policy == ReviewQueue.Policy.RANDOM
    assert queue.items.count() == Completion.objects.filter(batch="demo").count() >= 25

    assignment = review_services.lease_next(queue=queue, reviewer=rita)

    assert assignment is not None
    assert assignment.item.completion.batch == "demo"


def test_the_seed_imports_no_torch(tmp_path) -> None:
    # In a fresh interpreter: earlier tests in this process have usually imported torch already.
    script = (
        "import sys, django; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "from rebench_site.demo import demo_seed\n"
        "demo_seed()\n"
        "print('torch' in sys.modules)\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "rebench_site.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'seed.sqlite3'}",
        "DATA_DIR": str(tmp_path),
    }
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_every_demo_run_is_on_its_environments_full_configuration() -> None:
    # The demo runs are RE-Bench-scale results; the demo's own attempts run `small` and are ranked apart.
    demo_seed()
    runs = Attempt.objects.filter(source=Attempt.Source.FILE, external_id__startswith="demo-").select_related(
        "environment"
    )
    assert runs.exists()
    for run in runs:
        assert run.configuration == environment_configuration_for(environment=run.environment, name="full")


def test_the_gold_set_gives_each_class_enough_consensus_labels_to_train_with_room_to_spare() -> None:
    demo_seed()

    counts = classifier_selectors.training_label_counts()

    needed = settings.CLASSIFIER_MIN_LABELS_PER_CLASS
    assert counts["injurious"] >= needed + 10
    assert counts["safe"] >= needed + 10
    assert classifier_services.classifier_training_check() == counts


def test_the_gold_set_is_labelled_twice_by_the_demo_reviewers_who_disagree_once() -> None:
    demo_seed()
    gold = Completion.objects.filter(batch=DEMO_GOLD_BATCH)
    labels = Label.objects.filter(completion__in=gold)
    queue = ReviewQueue.objects.get(name=DEMO_GOLD_QUEUE)

    assert set(labels.values_list("reviewer__username", flat=True)) == {"rita", "sam"}
    assert labels.count() == 2 * gold.count()
    assert queue.items.filter(label_count=2).count() == gold.count()
    # Every label but one is the gold answer; that one went to adjudication, as a real disagreement does.
    wrong = [label for label in labels.select_related("completion") if label.value != label.completion.gold_label]
    assert [(w.reviewer.username, w.value) for w in wrong] == [("sam", "unsure")]
    adjudication = ReviewQueue.objects.get(adjudicates=queue)
    assert list(adjudication.items.values_list("completion_id", flat=True)) == [wrong[0].completion_id]
    # The seed's labels read as a person's pace, not the milliseconds the seed took.
    assert all(5 <= seconds <= 20 for seconds in labels.values_list("seconds_spent", flat=True))


def test_the_demo_wants_a_classifier_only_when_seeded_and_none_is_in_use_ready_or_queued(admin_user) -> None:
    assert not demo_classifier_wanted()
    demo_seed()
    assert demo_classifier_wanted()

    failed = ClassifierVersion.objects.create(status=ClassifierVersion.Status.FAILED)
    left_training = ClassifierVersion.objects.create(status=ClassifierVersion.Status.TRAINING)
    assert demo_classifier_wanted()
    for status in (ClassifierVersion.Status.QUEUED, ClassifierVersion.Status.READY):
        left_training.status = status
        left_training.save()
        assert not demo_classifier_wanted(), status
    failed.delete()


def test_training_the_demo_classifier_before_the_seed_says_there_is_nothing_to_do_and_makes_no_version() -> None:
    out = io.StringIO()
    call_command("seed_demo", "--classifier", stdout=out)
    assert "nothing to do" in out.getvalue()
    assert not ClassifierVersion.objects.exists()


@pytest.mark.timeout(600)
def test_the_demo_classifier_resumes_a_version_a_stopped_run_left_training_and_activates_it_with_a_threshold() -> None:
    import torch

    torch.set_num_threads(1)  # two shared cores: torch's spinning threads only slow each other down
    demo_seed()
    admin = get_user_model().objects.get(username="admin")
    left = ClassifierVersion.objects.create(created_by=admin, status=ClassifierVersion.Status.TRAINING)

    version = demo_classifier_train()

    assert version is not None
    assert version.pk == left.pk
    assert ClassifierVersion.objects.count() == 1
    version.refresh_from_db()
    assert version.status == ClassifierVersion.Status.READY
    assert version.is_active
    assert version.metrics["auroc"] > 0.9
    table = classifier_selectors.threshold_table(version=version, target_recall=DEMO_TARGET_RECALL)
    assert version.threshold == table.recommended
    assert version.threshold_target_recall == DEMO_TARGET_RECALL
    # The demo queue's completions were never labelled: the classifier has scored them all the same.
    assert not Completion.objects.filter(batch="demo", classifier_score__isnull=True).exists()

    assert demo_classifier_train() is None
    assert ClassifierVersion.objects.count() == 1
