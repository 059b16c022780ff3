"""A Task Standard family in METR's own layout runs unchanged: install() once per version on the machine,
start() copying from /root to /home/agent, teardown() without arguments, and a score given by hand
when score() returns None (an admin's page, with the note and the audit log)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from django.db import transaction
from django.test import Client

from audit.models import AuditEvent
from environments import task_standard
from environments.models import Environment, TaskFamily
from graders import services
from graders.models import AttemptScore, ScoreLogEntry
from tests import factories
from tests.conftest import needs_bwrap
from tests.trials.celery_support import BROKERS, broker_url, running_worker, using_broker, wait_for
from tests.workspace_support import put
from trials import services as trials_services
from trials.models import Attempt
from workstation import layout

FAMILY = Path(__file__).resolve().parent / "task_families" / "metr_layout_family"
SLUG = "metr_layout_family-main"

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def install_log(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the family's install() writes a line each time it runs; a cache of this test's own."""
    settings.ENVIRONMENT_CACHE_DIR = tmp_path / "cache"
    log = tmp_path / "install.log"
    monkeypatch.setenv("REBENCH_METR_FAMILY_INSTALL_LOG", str(log))
    return log


def test_install_runs_once_per_version_of_the_family_at_registration(db, install_log: Path, tmp_path: Path) -> None:
    family = task_standard.task_family_register(path=str(FAMILY))
    assert install_log.read_text() == "installed\n"
    assert family.install_output == "installed"
    assert family.installed_at is not None
    first_version = family.installed_version
    # Registered again, unchanged: install() doesn't run again.
    task_standard.task_family_register(path=str(FAMILY))
    assert install_log.read_text() == "installed\n"
    # A copy whose files changed is a new version: it runs again.
    copy = tmp_path / "metr_layout_family"
    shutil.copytree(FAMILY, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "assets" / "puzzle.txt").write_text("A new puzzle.\n")
    changed = task_standard.task_family_register(path=str(copy))
    assert changed.installed_version != first_version
    assert install_log.read_text() == "installed\ninstalled\n"


@pytest.fixture(params=BROKERS[:1])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Celery]:
    with using_broker(broker_url(request.param, tmp_path)) as app:
        yield app


def attempt_at(slug: str) -> Attempt:
    environment = Environment.objects.get(slug=slug)
    reservation = factories.ReservationFactory.create(
        expert=factories.expert(username="ada"), environment=environment, workstation__name="metr-box"
    )
    return factories.preparing(factories.AttemptFactory.create(reservation=reservation))


@needs_bwrap
@pytest.mark.skipif(
    os.geteuid() != 0, reason="start() in METR's layout is given /home/agent and /root by bubblewrap as root"
)
@pytest.mark.django_db(transaction=True)
def test_a_family_in_metrs_layout_runs_unchanged_and_an_admin_scores_it_by_hand(
    app: Celery, grading_dirs: Path, install_log: Path
) -> None:
    task_standard.task_family_register(path=str(FAMILY))
    attempt = attempt_at(SLUG)
    workspace = layout.workspace(attempt.pk)
    with running_worker(app, queues=[attempt.workstation.queue_name]):
        with transaction.atomic():
            services.workspace_prepare_queue(attempt)
        # Until the preparation has finished (its mark, made after every file is in): the first file to
        # appear is no sign the others are (a CI run read notes/README before it was copied).
        prepared = workspace.parent / f".{workspace.name}.prepared"
        assert wait_for(prepared.exists, timeout=60)
        # start() copied from /root/assets to /home/agent: the family's files and the workspace, not the host's.
        assert (workspace / "puzzle.txt").read_text() == (FAMILY / "assets" / "puzzle.txt").read_text()
        assert (workspace / "notes" / "README").read_text() == "work here\n"
        assert not Path("/home/agent/puzzle.txt").exists()
        # install() ran at registration; preparing on this machine found it done.
        assert install_log.read_text() == "installed\n"
        put(workspace, "submission.txt", "A piano.")
        # The starting state is scored (NaN: score() is the end's only) and the clock starts; then submit.
        assert attempt.user is not None
        trials_services.attempt_submit(attempt=_started(attempt), by=attempt.user)
        assert wait_for(lambda: ScoreLogEntry.objects.filter(attempt=attempt, job__kind="final").exists(), timeout=90)

    asking = ScoreLogEntry.objects.get(attempt=attempt, job__kind="final")
    assert asking.score is None
    assert asking.details["manual_scoring"] is True
    assert asking.details["submission"] == "A piano."
    assert "teardown_error" not in asking.details  # teardown() took no argument, as the standard calls it

    admin = Client()
    admin.force_login(factories.admin(username="root-admin"))
    page = admin.get("/grading/manual/").content.decode()
    assert f'data-awaiting="{attempt.pk}"' in page
    assert "A piano." in page
    # Bad input: a message on the page, nothing written.
    for score, note, said in [("abc", "fine", "a number"), ("nan", "fine", "finite"), ("0.8", " ", "Say how")]:
        response = admin.post("/grading/manual/", {"attempt": attempt.pk, "score": score, "note": note})
        assert response.status_code == 400
        assert said in response.content.decode()
    assert not ScoreLogEntry.objects.filter(attempt=attempt, details__manual=True).exists()
    expert = Client()
    expert.force_login(attempt.user)
    assert expert.post("/grading/manual/", {"attempt": attempt.pk, "score": "1", "note": "me"}).status_code == 403

    response = admin.post(
        "/grading/manual/", {"attempt": attempt.pk, "score": "0.8", "note": "right answer"}, follow=True
    )
    assert f"Attempt {attempt.pk} scored 0.8 by hand." in response.content.decode()
    assert AttemptScore.objects.get(attempt=attempt).raw == 0.8
    assert AttemptScore.objects.get(attempt=attempt).is_final
    entered = ScoreLogEntry.objects.get(attempt=attempt, details__manual=True)
    assert entered.details["entered_by"] == "root-admin"
    assert entered.details["note"] == "right answer"
    assert AuditEvent.objects.filter(action="score.manual", attempt_id=attempt.pk, note="right answer").count() == 1
    # Once: a second score is refused.
    again = admin.post("/grading/manual/", {"attempt": attempt.pk, "score": "0.1", "note": "oops"})
    assert again.status_code == 400
    assert "scored by hand already" in again.content.decode()
    assert f'data-awaiting="{attempt.pk}"' not in admin.get("/grading/manual/").content.decode()
    assert TaskFamily.objects.get(name="metr_layout_family").installed_version


def _started(attempt: Attempt) -> Attempt:
    assert wait_for(lambda: Attempt.objects.get(pk=attempt.pk).clock_started_at is not None, timeout=60)
    return Attempt.objects.get(pk=attempt.pk)
