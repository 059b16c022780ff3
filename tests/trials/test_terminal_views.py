"""The recording pages: admins replay and download; experts (even the owner), reviewers and strangers can't."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.http import FileResponse, StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests import factories
from trials.models import TerminalSession
from trials.recording import activity_timeline, recording_name


@pytest.fixture
def recorded(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.TERMINAL_RECORDING_SPOOL = tmp_path / "spool"
    attempt = factories.AttemptFactory.create(reservation__expert=factories.expert(username="ada"))
    name = recording_name(attempt.pk, 1)
    TerminalSession.objects.create(attempt=attempt, number=1, backend="local", tmux_session="t", recording_name=name)
    path = Path(settings.MEDIA_ROOT) / name  # a finished recording, as the default storage keeps it
    path.parent.mkdir(parents=True)
    start = attempt.started_at.timestamp()
    lines = [
        {"version": 2, "width": 80, "height": 24, "timestamp": int(start)},
        [0.5, "m", "connect"],
        [1.0, "i", "echo hi\r"],
        [1.1, "o", "hi\r\n"],
        [200.0, "i", "ls\r"],
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '[201.0, "o", "torn')
    return attempt


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_an_admin_replays_and_downloads_a_recording(recorded) -> None:
    admin = client_for(factories.admin(username="root"))
    page = admin.get(reverse("trials:terminal-replay", kwargs={"pk": recorded.pk}) + "?terminal=1")
    assert page.status_code == 200
    assert b"asciinema-player" in page.content
    assert b"1 active minute," in page.content  # the attempt began seconds ago: one minute so far
    cast = admin.get(reverse("trials:terminal-cast", kwargs={"pk": recorded.pk}) + "?terminal=1&download=1")
    assert cast.status_code == 200
    assert "attachment" in cast["Content-Disposition"]
    assert isinstance(cast, StreamingHttpResponse | FileResponse)
    assert json.loads(b"".join(cast.streaming_content).splitlines()[0])["version"] == 2


@pytest.mark.parametrize("who", ["owner", "other_expert", "reviewer"])
def test_everyone_but_admins_is_refused_the_recordings(recorded, who: str) -> None:
    user = {
        "owner": recorded.user,
        "other_expert": factories.expert(username="grace"),
        "reviewer": factories.reviewer(username="rita"),
    }[who]
    for name in ("trials:terminal-replay", "trials:terminal-cast"):
        response = client_for(user).get(reverse(name, kwargs={"pk": recorded.pk}) + "?terminal=1")
        assert response.status_code == 403, (name, who)


def test_anonymous_users_are_sent_to_log_in(recorded) -> None:
    response = client_for(None).get(reverse("trials:terminal-replay", kwargs={"pk": recorded.pk}) + "?terminal=1")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_terminal_without_a_recording_is_a_404_and_its_download_leads_back_to_the_page(recorded) -> None:
    admin = client_for(factories.admin(username="root"))
    assert admin.get(reverse("trials:terminal-replay", kwargs={"pk": recorded.pk}) + "?terminal=2").status_code == 404
    response = admin.get(reverse("trials:terminal-cast", kwargs={"pk": recorded.pk}) + "?terminal=2")
    assert response.status_code == 302
    assert response["Location"] == reverse("trials:terminal-replay", kwargs={"pk": recorded.pk})


def test_an_attempt_without_recordings_says_so(db) -> None:
    attempt = factories.AttemptFactory.create()
    admin = client_for(factories.admin(username="root"))
    response = admin.get(reverse("trials:terminal-replay", kwargs={"pk": attempt.pk}))
    assert response.status_code == 200
    assert b"has been recorded yet" in response.content


def test_the_activity_timeline_counts_minutes_with_typing_and_skips_a_torn_last_line(recorded) -> None:
    start = recorded.started_at.replace(microsecond=0)
    activity = activity_timeline(
        [recording_name(recorded.pk, 1)], start=start, end=start + timedelta(minutes=9, seconds=30)
    )
    assert len(activity.minutes) == 10
    assert [m.active for m in activity.minutes][:4] == [True, False, False, True]
    assert activity.active_minutes == 2
    assert activity.idle_minutes == 8


def test_the_attempt_page_tells_the_expert_the_terminal_is_recorded(recorded) -> None:
    response = client_for(recorded.user).get(reverse("trials:attempt", kwargs={"pk": recorded.pk}))
    assert response.status_code == 200
    assert b"Your terminal is recorded" in response.content
    assert b'id="terminal-panel"' in response.content
    assert b'data-readonly="false"' in response.content


def test_an_ended_attempt_shows_a_summary_in_place_of_the_terminal(recorded, admin_user) -> None:
    from trials import services
    from trials.models import Attempt

    started = timezone.now() - timedelta(hours=1)
    Attempt.objects.filter(pk=recorded.pk).update(started_at=started, clock_started_at=started)
    recorded.refresh_from_db()
    services.attempt_submit(attempt=recorded, by=recorded.user, now=started + timedelta(minutes=7))
    page = client_for(recorded.user).get(reverse("trials:attempt", kwargs={"pk": recorded.pk})).content.decode()
    assert 'id="terminal-panel"' not in page
    assert 'id="ended-summary"' in page
    assert re.search(r"id=\"ended-working-time\">([^<]*)<", page).group(1) == "0:07"
    assert ">ended</div>" in page  # no 00:00:00 countdown after a 7-minute attempt
    assert "slot closes" not in page  # the slot was given back; its old end means nothing now
    assert "terminal-replay" not in page  # recordings are for admins
    admin_page = client_for(admin_user).get(reverse("trials:attempt", kwargs={"pk": recorded.pk})).content.decode()
    assert f"/attempts/{recorded.pk}/recordings/?terminal=1" in admin_page
