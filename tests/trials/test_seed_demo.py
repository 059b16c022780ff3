"""The demo seed: logins for every role, imported runs with a leaderboard, a review queue rita can start on."""

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

from graders.leaderboards.selectors import leaderboard_latest
from graders.models import AttemptScore, LeaderboardSnapshot, ScoreLogEntry
from rebench_site import roles
from review import services as review_services
from review.models import Completion, ReviewQueue
from trials.models import Attempt
from trials.services_demo import DEMO_LOGINS, DEMO_QUEUE, demo_seed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"


def _row_counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


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


def test_the_seed_prints_a_login_for_every_role_and_each_one_works(client) -> None:  # type: ignore[no-untyped-def]
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


def test_the_seed_imports_no_torch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # In a fresh interpreter: earlier tests in this process have usually imported torch already.
    script = (
        "import sys, django; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "from trials.services_demo import demo_seed\n"
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
