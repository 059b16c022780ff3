"""An expert keeps working past the deadline while no Celery worker (nor beat) runs to end the attempt.

Nothing here starts a worker: the deadline task and the sweep never run. Every request the expert
makes after the deadline, with the shell's attempt token or with the browser's session, must find
the attempt ended (at its deadline, not at the request) and write nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from graders import services as grading
from graders.models import AttemptScore, ScoreLogEntry, ScoringJob
from tests import factories
from tests.trials import terminal_support as ts
from trials import services
from trials.models import Attempt, Note, Pause, Workstation
from workstation.scoring import Outcome

pytestmark = pytest.mark.django_db

ENDED_TOKEN = "The attempt has ended; its token no longer works."


def overdue_attempt(expert: User, *, over_by: timedelta = timedelta(hours=1), **workstation: Any) -> Attempt:
    """A running attempt whose 8-hour clock ran out `over_by` ago, in a 12-hour slot (the slot still open)."""
    started = timezone.now() - timedelta(hours=8) - over_by
    reservation = factories.ReservationFactory.create(
        expert=expert,
        environment=factories.environment("ai_rd_triton_cumsum"),
        starts_at=started - timedelta(minutes=5),
        ends_at=started + timedelta(hours=12),
        **{f"workstation__{name}": value for name, value in workstation.items()},
    )
    return factories.AttemptFactory.create(reservation=reservation, started_at=started)


def deadline_of(attempt: Attempt) -> datetime:
    return attempt.started_at + attempt.time_limit


@pytest.fixture
def attempt(expert: User) -> Attempt:
    return overdue_attempt(expert)


@pytest.fixture
def token_client(attempt: Attempt) -> APIClient:
    """The `task` command's client: only the shell's attempt token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Attempt {services.attempt_token_issue(attempt=attempt)}")
    return client


@pytest.fixture
def browser(expert: User) -> Client:
    """The expert's browser session: the attempt page's forms and the API by session."""
    client = Client()
    client.force_login(expert)
    return client


def assert_ended_at_its_deadline(attempt: Attempt) -> None:
    ended = Attempt.objects.get(pk=attempt.pk)
    assert ended.status == Attempt.Status.ENDED
    assert ended.end_reason == Attempt.EndReason.DEADLINE
    assert ended.ended_at == deadline_of(attempt)


def assert_nothing_written(attempt: Attempt) -> None:
    assert not Note.objects.filter(attempt=attempt).exists()
    assert not ScoringJob.objects.filter(attempt=attempt, kind=ScoringJob.Kind.INTERMEDIATE).exists()
    assert not Pause.objects.filter(attempt=attempt).exists()


def a_break_opened_after_the_deadline(attempt: Attempt) -> None:
    """What the pause endpoint let through before: a break on a clock already at zero."""
    Pause.objects.create(
        attempt=attempt, reason=Pause.Reason.BREAK, started_at=deadline_of(attempt) + timedelta(minutes=5)
    )


# --- the shell's attempt token ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "notes/", {"body": "kept going after the deadline"}),
        ("post", "score/", {}),
        ("post", "pause/", {}),
        ("post", "resume/", {}),
        ("post", "submit/", {}),
        ("get", "", None),
    ],
    ids=["note", "score", "pause", "resume", "submit", "status"],
)
def test_the_attempt_token_is_refused_after_the_deadline_as_if_the_attempt_had_ended(
    attempt: Attempt, token_client: APIClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    if path == "resume/":
        a_break_opened_after_the_deadline(attempt)
    response = getattr(token_client, method)(f"/api/attempts/{attempt.pk}/{path}", body, format="json")
    assert response.status_code == 401, response.content
    assert response.json()["detail"] == ENDED_TOKEN
    assert_ended_at_its_deadline(attempt)
    assert_nothing_written(attempt)


def test_the_attempt_token_still_works_a_moment_before_the_deadline(expert: User) -> None:
    attempt = overdue_attempt(expert, over_by=-timedelta(minutes=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Attempt {services.attempt_token_issue(attempt=attempt)}")
    response = client.post(f"/api/attempts/{attempt.pk}/notes/", {"body": "just in time"}, format="json")
    assert response.status_code == 201, response.content
    assert Attempt.objects.get(pk=attempt.pk).status == Attempt.Status.RUNNING


# --- the browser session: the REST API --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("notes/", {"body": "kept going after the deadline"}),
        ("score/", {}),
        ("pause/", {}),
        ("resume/", {}),
    ],
    ids=["note", "score", "pause", "resume"],
)
def test_a_write_by_session_after_the_deadline_is_refused_on_the_attempt_field(
    attempt: Attempt, browser: Client, path: str, body: dict[str, Any]
) -> None:
    if path == "resume/":
        a_break_opened_after_the_deadline(attempt)
    response = browser.post(f"/api/attempts/{attempt.pk}/{path}", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"attempt"}
    assert "ended" in response.json()["attempt"][0]
    assert_ended_at_its_deadline(attempt)
    assert_nothing_written(attempt)


def test_the_status_shows_the_attempt_ended_at_its_deadline_once_it_is_overdue(
    attempt: Attempt, browser: Client
) -> None:
    body = browser.get(f"/api/attempts/{attempt.pk}/").json()
    assert body["status"] == "ended"
    assert body["state"] == "ended"
    assert body["end_reason"] == "deadline"
    assert body["elapsed_seconds"] == attempt.time_limit.total_seconds()
    assert datetime.fromisoformat(body["ended_at"].replace("Z", "+00:00")) == deadline_of(attempt)
    assert_ended_at_its_deadline(attempt)


def test_submitting_after_the_deadline_keeps_the_deadline_as_the_end(attempt: Attempt, browser: Client) -> None:
    response = browser.post(f"/api/attempts/{attempt.pk}/submit/")
    assert response.status_code == 200, response.content
    assert response.json()["end_reason"] == "deadline"
    assert_ended_at_its_deadline(attempt)


def test_an_admin_adding_a_pause_after_the_deadline_is_refused_and_the_attempt_ends(
    attempt: Attempt, admin_user: User
) -> None:
    client = APIClient()
    client.force_authenticate(admin_user)
    outage = deadline_of(attempt) - timedelta(minutes=30)
    response = client.post(
        f"/api/attempts/{attempt.pk}/pauses/",
        {"started_at": outage.isoformat(), "ended_at": (outage + timedelta(minutes=10)).isoformat()},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"attempt"}
    assert_ended_at_its_deadline(attempt)
    assert_nothing_written(attempt)


def test_the_attempt_ends_once_however_many_requests_come_after_the_deadline(
    attempt: Attempt, browser: Client, token_client: APIClient, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    from workstation.agent.tasks import scoring_job_run

    queued: list[Any] = []
    monkeypatch.setattr(scoring_job_run, "apply_async", lambda *args, **kwargs: queued.append(kwargs))
    with django_capture_on_commit_callbacks(execute=True):
        token_client.post(f"/api/attempts/{attempt.pk}/notes/", {"body": "one"}, format="json")
        browser.post(f"/api/attempts/{attempt.pk}/notes/", {"body": "two"}, content_type="application/json")
        browser.post(f"/api/attempts/{attempt.pk}/pause/", {}, content_type="application/json")
        browser.post(f"/api/attempts/{attempt.pk}/score/", {}, content_type="application/json")
        browser.post(f"/api/attempts/{attempt.pk}/submit/")
    assert_ended_at_its_deadline(attempt)
    assert_nothing_written(attempt)
    # Ended as the deadline task would have: the final scoring run is queued, once.
    final = ScoringJob.objects.get(attempt=attempt)
    assert final.kind == ScoringJob.Kind.FINAL
    assert len(queued) == 1


# --- the browser session: the attempt page's forms ----------------------------------------------------


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/attempts/{pk}/notes/", {"body": "kept going after the deadline"}),
        ("/attempts/{pk}/pause/", {"reason": "break"}),
        ("/attempts/{pk}/resume/", {}),
        ("/grading/attempts/{pk}/score/", {}),
    ],
    ids=["note", "pause", "resume", "score"],
)
def test_the_attempt_pages_forms_are_refused_after_the_deadline(
    attempt: Attempt, browser: Client, path: str, body: dict[str, str]
) -> None:
    if "resume" in path:
        a_break_opened_after_the_deadline(attempt)
    response = browser.post(path.format(pk=attempt.pk), body)
    assert response.status_code == 302
    assert any("ended" in message for message in flash(response)), flash(response)
    assert_ended_at_its_deadline(attempt)
    assert_nothing_written(attempt)


def test_the_note_form_over_htmx_is_refused_after_the_deadline(attempt: Attempt, browser: Client) -> None:
    response = browser.post(f"/attempts/{attempt.pk}/notes/", {"body": "late"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert b"ended" in response.content
    assert_ended_at_its_deadline(attempt)
    assert_nothing_written(attempt)


def test_the_submit_form_after_the_deadline_keeps_the_deadline_as_the_end(attempt: Attempt, browser: Client) -> None:
    browser.post(f"/attempts/{attempt.pk}/submit/")
    assert_ended_at_its_deadline(attempt)


def test_the_attempt_page_and_its_clock_show_the_attempt_ended(attempt: Attempt, browser: Client) -> None:
    page = browser.get(f"/attempts/{attempt.pk}/")
    assert page.status_code == 200
    assert page.context["clock"].state == "ended"
    clock = browser.get(f"/attempts/{attempt.pk}/clock/").json()
    assert clock["state"] == "ended"
    assert clock["end_reason"] == "deadline"
    assert clock["remaining_seconds"] is None
    assert_ended_at_its_deadline(attempt)


# --- the terminal ----------------------------------------------------------------------------------


@ts.sync
async def _attach(attempt: Attempt, outcome: dict[str, Any]) -> None:
    from rebench_site.asgi import application

    def cookie() -> bytes:
        client = Client()
        assert attempt.user is not None
        client.force_login(attempt.user)
        return f"sessionid={client.cookies['sessionid'].value}".encode()

    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"cookie", await database_sync_to_async(cookie)())]
    comm = ts.WebsocketCommunicator(application, ts.ws_path(attempt.pk), headers=headers)
    outcome["connected"], _ = await comm.connect(timeout=10)
    screen = ts.Screen(comm)
    outcome["close"] = await screen.message("close", timeout=5)
    while screen.closed_code is None:
        assert await screen.pump_once(5)
    outcome["code"] = screen.closed_code


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
def test_a_terminal_opened_after_the_deadline_is_refused_with_the_ended_message(expert: User) -> None:
    # An SSH workstation nobody listens for: were the shell opened, it would fail, not hang the test.
    attempt = overdue_attempt(expert, backend=Workstation.Backend.SSH, host="127.0.0.1", ssh_port=9)
    outcome: dict[str, Any] = {}
    _attach(attempt, outcome)
    assert outcome["connected"]
    assert outcome["close"]["code"] == "attempt"
    assert "time limit reached" in outcome["close"]["reason"]
    assert outcome["code"] == 4000
    assert_ended_at_its_deadline(attempt)
    assert not attempt.terminal_sessions.exists()


# --- a scoring job queued before the deadline, picked up after it -------------------------------------


def test_a_scoring_job_picked_up_after_the_deadline_does_not_score_the_work_done_since(expert: User) -> None:
    attempt = overdue_attempt(expert, over_by=-timedelta(minutes=2))
    token = services.attempt_token_issue(attempt=attempt)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Attempt {token}")
    queued = client.post(f"/api/attempts/{attempt.pk}/score/", {}, format="json")
    assert queued.status_code == 202, queued.content
    job_id = queued.json()["job"]

    # No worker until well after the deadline; then one picks the job up.
    late = deadline_of(attempt) + timedelta(minutes=40)
    assert grading.scoring_job_begin(job_id=job_id, now=late) is None
    assert_ended_at_its_deadline(attempt)
    job = ScoringJob.objects.get(pk=job_id)
    assert job.status == ScoringJob.Status.FAILED
    assert job.finished_at == late
    assert "deadline" in job.error
    # Its one entry is there, counting nothing: the final scoring run scores the workspace.
    entry = ScoreLogEntry.objects.get(job=job)
    assert entry.score is None
    assert entry.elapsed_seconds == attempt.time_limit.total_seconds()
    assert AttemptScore.objects.get(attempt=attempt).valid_entries == 0
    assert not Pause.objects.filter(attempt=attempt).exists()

    # A redelivery, or a worker that began it all the same, writes nothing more.
    assert grading.scoring_job_begin(job_id=job_id, now=late + timedelta(minutes=1)) is None
    again = grading.scoring_job_finish(
        job_id=job_id, outcome=Outcome(score=0.9, message="post-deadline work", details={}), now=late
    )
    assert again == entry
    assert ScoreLogEntry.objects.filter(attempt=attempt).count() == 1
    assert AttemptScore.objects.get(attempt=attempt).valid_entries == 0


def test_a_scoring_job_picked_up_before_the_deadline_still_scores(expert: User) -> None:
    attempt = overdue_attempt(expert, over_by=-timedelta(minutes=2))
    job = grading.scoring_job_request(attempt=attempt, by=expert)
    begun = grading.scoring_job_begin(job_id=str(job.pk))
    assert begun is not None
    assert begun.status == ScoringJob.Status.RUNNING
    # The clock stopped for scoring, so the deadline can't pass while the scorer runs.
    assert Attempt.objects.prefetch_related("pauses").get(pk=attempt.pk).open_pause().reason == "scoring"
