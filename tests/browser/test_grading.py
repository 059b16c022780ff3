"""An expert presses Score in a real browser: live progress, then the entry in the table and the chart."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from playwright.sync_api import expect

from graders.models import ScoreLogEntry
from tests import factories
from tests.graders.conftest import attempt_on, grading_dirs
from tests.trials.celery_support import broker_url, running_worker, using_broker
from tests.workspace_support import put

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

__all__ = ["attempt_on", "grading_dirs"]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Celery]:
    """One broker is enough here (the worker tests cover both): Redis where there is one."""
    with using_broker(broker_url("redis" if os.environ.get("REDIS_URL") else "sqla", tmp_path)) as app:
        yield app


def test_the_expert_scores_and_sees_progress_the_log_and_the_chart(page_for, attempt_on, app: Celery) -> None:
    attempt = attempt_on("grading_test_slow")
    from graders import services
    from workstation import layout

    services.workspace_prepare(attempt=attempt)
    put(layout.workspace(attempt.pk), "sleep.txt", "2")
    page = page_for("ada", factories.PASSWORD)
    page.goto(f"/attempts/{attempt.pk}/")
    expect(page.locator("#score-log")).to_contain_text("No scores yet.")

    with running_worker(app, queues=[attempt.workstation.queue_name]):
        page.click("#score-button")
        # The card polls: queued or running mm:ss while the scorer sleeps, then the result.
        expect(page.locator("#score-progress")).to_contain_text(re.compile(r"queued|running 00:0\d"))
        expect(page.locator("#score-progress")).to_contain_text("Last run: done", timeout=30_000)
    expect(page.locator("#score-log tbody tr")).to_have_count(1)
    expect(page.locator("#score-log tbody td:nth-child(3) span")).to_have_text("3")  # 3.0 to 4 digits
    expect(page.locator("#score-chart svg")).to_have_count(1)  # drawn by the vendored Vega-Lite
    assert ScoreLogEntry.objects.get(attempt=attempt).score == 3.0


def test_instructions_render_as_markdown_and_their_raw_html_never_runs(page_for, attempt_on) -> None:
    attempt = attempt_on("grading_test_markdown")
    page = page_for("ada", factories.PASSWORD)
    page.goto(f"/attempts/{attempt.pk}/")
    instructions = page.locator("#environment-instructions")
    expect(instructions.locator("h1")).to_have_text("Make it faster")
    expect(instructions.locator("table td").last).to_have_text("1.6 ms")
    # The <script> and the onerror= in the Markdown are shown as text; neither ran.
    expect(instructions).to_contain_text('<script>document.title = "pwned"</script>')
    assert instructions.locator("script, img").count() == 0
    assert page.evaluate("document.title") != "pwned"
    assert instructions.locator("a[href^='javascript']").count() == 0
