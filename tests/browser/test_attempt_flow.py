"""An expert books, starts (the clock waits for the environment), pauses, resumes and submits in a real
browser; an admin sees it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from graders import services as grading_services
from tests import factories
from trials import services
from trials.models import Attempt, Reservation
from workstation import scoring

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def read_seconds(text: str) -> int:
    h, m, s = (int(x) for x in text.split(":"))
    return h * 3600 + m * 60 + s


def prepare_and_score_the_start(attempt: Attempt) -> None:
    """What the workstation's worker reports (no worker runs here): the workspace ready, the starting
    solution scored; the clock starts at that moment."""
    services.attempt_workspace_mark_ready(attempt_id=attempt.pk)
    job = grading_services.scoring_job_queue_start(attempt_id=attempt.pk)
    assert job is not None
    grading_services.scoring_job_begin(job_id=str(job.pk))
    grading_services.scoring_job_finish(job_id=str(job.pk), outcome=scoring.Outcome(1.0, "ok"))


def test_expert_books_starts_pauses_resumes_and_submits_and_the_admin_sees_it(page_for) -> None:
    expert = factories.expert(username="ada")
    factories.admin(username="root")
    factories.environment()
    factories.WorkstationFactory.create(name="local", gpu_count=8)

    page = page_for("ada", factories.PASSWORD)
    expect(page).to_have_url(re.compile(r"/my/$"))

    page.click("text=Book a slot")
    page.click("[data-book=ai_rd_triton_cumsum]")
    page.click("[data-workstation=local] [data-slot=now]")
    expect(page.locator(".messages")).to_contain_text("Booked")
    reservation = Reservation.objects.get(expert=expert)

    page.click(f"[data-reservation='{reservation.pk}'] >> text=Start attempt")
    expect(page).to_have_url(re.compile(r"/attempts/\d+/$"))
    countdown = page.locator("#countdown")
    # Preparing the environment: the countdown holds at the whole time limit until the start is scored.
    expect(countdown).to_have_attribute("data-state", "preparing")
    expect(page.locator("#workspace-preparing")).to_contain_text("Preparing the environment")
    expect(countdown).to_have_text("08:00:00")
    page.wait_for_timeout(1500)
    expect(countdown).to_have_text("08:00:00")
    prepare_and_score_the_start(Attempt.objects.get(user=expert))
    expect(countdown).to_have_attribute("data-state", "running", timeout=15_000)  # the page's next sync
    expect(page.locator("#workspace-preparing")).to_be_hidden()
    first = read_seconds(countdown.inner_text())
    assert 7 * 3600 < first <= 8 * 3600
    page.wait_for_timeout(2200)
    assert read_seconds(countdown.inner_text()) < first, "the countdown should move while running"

    page.click("#pause-button")
    expect(page.locator("#clock-state")).to_contain_text("paused")
    paused_at = countdown.inner_text()
    page.wait_for_timeout(1500)
    assert countdown.inner_text() == paused_at, "the countdown stands still while paused"

    page.reload()  # the countdown comes from the server's numbers, so a reload shows the same
    expect(countdown).to_have_text(paused_at)

    page.click("#resume-button")
    expect(page.locator("#clock-state")).to_contain_text("running")

    page.fill("textarea[name=body]", "trying a blocked scan")
    page.click("text=Add note")
    expect(page.locator("#notes")).to_contain_text("trying a blocked scan")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#submit-button")
    expect(page.locator("#clock-state")).to_contain_text("ended")
    attempt = Attempt.objects.get(user=expert)
    assert attempt.status == Attempt.Status.ENDED
    assert attempt.end_reason == Attempt.EndReason.SUBMITTED
    assert attempt.notes.get().body == "trying a blocked scan"
    assert attempt.pauses.get().ended_at is not None

    admin_page = page_for("root", factories.PASSWORD)
    expect(admin_page).to_have_url(re.compile(r"/schedule/$"))
    cell = admin_page.locator(f"[data-workstation=local] [data-reservation='{reservation.pk}']")
    expect(cell).to_contain_text("ada")
    expect(cell).to_contain_text("ended")
