"""The attempt page's live parts: what the clock's `version` follows, the fragment, and the set-up state."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from graders import services as grading_services
from graders.models import ScoreLogEntry
from tests import factories
from trials import services
from trials.models import Attempt
from workstation import scoring

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def version(client: Client, attempt: Attempt) -> str:
    response = client.get(reverse("trials:attempt-clock", args=[attempt.pk]))
    assert response.status_code == 200
    return response.json()["version"]


def test_the_version_stands_still_while_nothing_the_page_shows_changes() -> None:
    attempt = factories.AttemptFactory.create(workspace_ready_at=timezone.now())
    client = client_for(attempt.user)
    assert version(client, attempt) == version(client, attempt)


def test_the_version_moves_when_a_score_arrives_a_note_is_written_or_the_clock_pauses() -> None:
    attempt = factories.AttemptFactory.create(workspace_ready_at=timezone.now())
    client = client_for(attempt.user)
    seen = {version(client, attempt)}

    ScoreLogEntry.objects.create(attempt=attempt, scored_at=timezone.now(), elapsed_seconds=60, score=1.5)
    seen.add(version(client, attempt))
    assert attempt.user is not None
    services.attempt_add_note(attempt=attempt, by=attempt.user, body="tried a blocked scan")
    seen.add(version(client, attempt))
    services.attempt_pause(attempt=attempt, by=attempt.user, reason="break")
    seen.add(version(client, attempt))
    services.attempt_resume(attempt=Attempt.objects.get(pk=attempt.pk), by=attempt.user)
    seen.add(version(client, attempt))
    assert len(seen) == 5


def test_the_live_fragment_swaps_parts_by_id_and_never_the_terminal_while_running() -> None:
    attempt = factories.AttemptFactory.create(workspace_ready_at=timezone.now())
    page = client_for(attempt.user).get(reverse("trials:attempt-live", args=[attempt.pk])).content.decode()
    for part in ("attempt-status", "attempt-actions", "score-card-wrap", "notes-list", "pauses-list"):
        assert f'id="{part}"' in page
    assert page.count('hx-swap-oob="true"') >= 7
    assert "terminal-panel" not in page
    assert 'id="workspace-main"' not in page
    assert "<textarea" not in page, "the note's box is not in the live parts: an unsent note stays"


def test_once_ended_the_live_fragment_replaces_the_terminal_with_the_summary() -> None:
    attempt = factories.AttemptFactory.create(workspace_ready_at=timezone.now())
    assert attempt.user is not None
    services.attempt_submit(attempt=attempt, by=attempt.user)
    page = client_for(attempt.user).get(reverse("trials:attempt-live", args=[attempt.pk])).content.decode()
    assert '<div id="workspace-main" hx-swap-oob="true">' in page
    assert 'id="ended-summary"' in page


def test_pause_from_the_bar_answers_with_the_live_parts_and_a_plain_form_with_a_redirect() -> None:
    attempt = factories.AttemptFactory.create(workspace_ready_at=timezone.now())
    client = client_for(attempt.user)
    url = reverse("trials:attempt-pause", args=[attempt.pk])
    response = client.post(url, {"reason": "break"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-state="paused"' in body
    assert "Paused: the clock has stopped." in body
    resume = client.post(reverse("trials:attempt-resume", args=[attempt.pk]))
    assert resume.status_code == 302


def test_another_expert_gets_no_live_parts() -> None:
    attempt = factories.AttemptFactory.create()
    other = factories.expert(username="mallory")
    response = client_for(other).get(reverse("trials:attempt-live", args=[attempt.pk]))
    assert response.status_code == 404


def test_a_new_attempt_says_its_environment_is_being_prepared_until_its_starting_solution_is_scored() -> None:
    attempt = factories.AttemptFactory.create(workstation__backend="local", clock_started_at=None)
    client = client_for(attempt.user)
    url = reverse("trials:attempt", args=[attempt.pk])

    page = client.get(url).content.decode()
    assert 'data-step="workspace" class="doing"' in page
    assert "Preparing the environment…" in page
    assert 'data-state="preparing"' in page  # the countdown holds still at the full time
    assert "the clock starts when the environment is ready" in page

    assert services.attempt_workspace_mark_ready(attempt_id=attempt.pk) is True
    assert services.attempt_workspace_mark_ready(attempt_id=attempt.pk) is False, "only the first time counts"
    job = grading_services.scoring_job_queue_start(attempt_id=attempt.pk)
    assert job is not None
    page = client.get(url).content.decode()
    assert 'data-step="workspace" class="done"' in page
    assert 'data-step="scoring" class="doing"' in page

    grading_services.scoring_job_finish(job_id=str(job.pk), outcome=scoring.Outcome(2.0, "ok"))
    page = client.get(url).content.decode()
    assert '<div class="preparing" id="workspace-preparing" role="status" hidden' in page.replace("\n", " ")
    assert 'data-state="running"' in page


def test_an_ended_attempt_is_never_preparing() -> None:
    attempt = factories.AttemptFactory.create()
    assert attempt.user is not None
    services.attempt_submit(attempt=attempt, by=attempt.user)
    page = client_for(attempt.user).get(reverse("trials:attempt", args=[attempt.pk])).content.decode()
    assert "Preparing your workspace" not in page
