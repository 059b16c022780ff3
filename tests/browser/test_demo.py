"""The demo as `make run` leaves it: seeded, its first classifier trained in the background, the red-team tool,
the threshold page and the dashboard working."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from playwright.sync_api import expect

from rebench_site.demo import DEMO_GOLD_BATCH, demo_classifier_wanted, demo_seed
from rebench_site.management.commands.rundev import demo_classifier_command
from review.classifier.models import ClassifierVersion, RedTeamAttempt
from review.models import Completion

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]

SAFE_REWRITE = "He climbed down carefully and made everyone a cup of tea."


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def demo(settings, open_tmp, monkeypatch):
    from rebench_site.celery import app

    # A data folder attempt users can enter: the command's system checks refuse one they can't.
    settings.MEDIA_ROOT = open_tmp / "media"
    # The jobs the seed queues after commit (imports it already ran, a leaderboard recompute) run here
    # rather than wait in a broker for a worker of some later test or demo, which would find no such rows.
    app.loader.import_default_modules()  # the app's configuration read in, so the override below stays
    monkeypatch.setitem(app.conf.changes, "CELERY_TASK_ALWAYS_EAGER", True)
    demo_seed()
    return open_tmp


def _train_in_the_background_as_rundev_does(data_dir: Path) -> str:
    """rundev's command line, in a process of its own, on this test's database and media; waits for its end."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DATA_DIR": str(data_dir),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        # Activation queues a rescoring job: to a broker of this test's own, not a Redis others read.
        "CELERY_BROKER_URL": f"sqla+sqlite:///{data_dir / 'broker.sqlite3'}",
        # Two shared cores: torch's spinning threads would only slow each other down.
        "CLASSIFIER_TORCH_THREADS": "1",
    }
    done = subprocess.run(
        demo_classifier_command(),
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def test_the_demo_red_team_tool_scores_a_text_once_the_background_training_finishes(page_for, demo) -> None:
    rita = page_for("rita", "rebench-reviewer")
    rita.goto("/review/red-team/")
    expect(rita.locator("main")).to_contain_text("No classifier version is active yet")
    assert demo_classifier_wanted()

    printed = _train_in_the_background_as_rundev_does(demo)

    assert "the red-team tool works now" in printed
    version = ClassifierVersion.objects.get(is_active=True)
    assert version.status == ClassifierVersion.Status.READY
    assert version.threshold is not None
    rita.reload()
    expect(rita.locator("main")).to_contain_text(f"Active classifier: v{version.pk}, threshold {version.threshold:.4f}")
    # The rewrites on offer are the labelled injurious completions, highest score first.
    start = Completion.objects.filter(batch=DEMO_GOLD_BATCH, gold_label="injurious").order_by("-classifier_score")[0]
    # The first score loads the encoder into the live server: seconds alone, longer on a loaded machine.
    rita.locator(f"#start-completions input[value='{start.pk}'] + button").click(timeout=60_000)
    rita.wait_for_url("**/review/red-team/*/", timeout=60_000)
    score = rita.locator("#rt-score")
    expect(score).not_to_have_text("—", timeout=30_000)
    assert float(score.inner_text()) >= version.threshold
    expect(rita.locator("#rt-verdict")).to_have_text("filtered out")

    rita.locator("#rt-text").fill(SAFE_REWRITE)
    expect(rita.locator("#rt-verdict")).to_have_text("passes the classifier", timeout=20_000)
    assert float(score.inner_text()) < version.threshold
    rita.locator("#rt-submit").click()
    rita.wait_for_url("**/review/red-team/")
    expect(rita.locator(".messages")).to_contain_text("It is in the verify queue")
    assert RedTeamAttempt.objects.get().rewrite.text == SAFE_REWRITE

    # The admin's two pages that need a trained version show it too.
    admin = page_for("admin", "rebench-admin")
    admin.goto("/review/classifier/threshold/")
    expect(admin.locator("main")).to_contain_text(f"Saved threshold: {version.threshold:.6f}")
    expect(admin.locator("#threshold-table")).to_be_visible()
    admin.goto("/review/dashboard/")
    expect(admin.locator("#dashboard-classifier")).to_contain_text(f"Active: v{version.pk}")
    expect(admin.locator("#dashboard-threshold")).to_have_text(f"{version.threshold:.4f}")
