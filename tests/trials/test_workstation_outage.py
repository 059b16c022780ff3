"""A workstation that stops answering mid-attempt: the page says so, the clock pauses from the end of the
grace, the pause ends when the host is back, and scoring that waits on it ends with a clear entry."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from graders.models import ScoringJob
from graders.services.recovery import scoring_jobs_recover
from tests import factories
from trials import selectors, services
from trials.models import Attempt, Pause, Workstation

pytestmark = pytest.mark.django_db

GRACE = settings.WORKSTATION_OFFLINE_AFTER


def running_attempt(started_minutes_ago: int = 60) -> Attempt:
    started = timezone.now() - timedelta(minutes=started_minutes_ago)
    reservation = factories.ReservationFactory.create(starts_at=started - timedelta(minutes=1))
    return factories.AttemptFactory.create(reservation=reservation, started_at=started)


def heard(attempt: Attempt, moment: datetime) -> None:
    assert attempt.workstation_id is not None
    Workstation.objects.filter(pk=attempt.workstation_id).update(last_heartbeat_at=moment)


def fresh(attempt: Attempt) -> Attempt:
    return Attempt.objects.prefetch_related("pauses").select_related("workstation").get(pk=attempt.pk)


def test_a_silent_workstations_attempt_is_paused_from_the_end_of_the_grace_and_says_why() -> None:
    attempt = running_attempt()
    now = timezone.now()
    last_heard = now - GRACE - timedelta(minutes=3)
    heard(attempt, last_heard)
    deadline_before = fresh(attempt).deadline()
    assert services.workstations_watch(now=now) == {"paused": 1, "resumed": 0, "renewed": 0}
    attempt = fresh(attempt)
    pause = attempt.open_pause()
    assert pause is not None
    assert pause.reason == Pause.Reason.TECHNICAL
    assert pause.created_by is None
    assert pause.started_at == last_heard + GRACE
    assert "stopped answering" in pause.note
    assert attempt.workstation is not None
    assert attempt.workstation.name in pause.note
    assert selectors.attempt_frozen_reason(attempt, now) == "outage"
    # The clock stopped where the grace ran out: the three minutes since don't count, nor the rest.
    assert deadline_before is not None
    assert attempt.elapsed(now) == attempt.elapsed(last_heard + GRACE)
    assert attempt.elapsed(now + timedelta(hours=1)) == attempt.elapsed(now)
    assert AuditEvent.objects.filter(action="attempt.outage_pause", attempt_id=attempt.pk).count() == 1
    # A second sweep changes nothing.
    assert services.workstations_watch(now=now)["paused"] == 0
    assert attempt.pauses.count() == 1


def test_the_outage_pause_ends_when_the_heartbeat_is_back_and_an_admins_pause_does_not() -> None:
    attempt = running_attempt()
    now = timezone.now()
    heard(attempt, now - GRACE - timedelta(minutes=5))
    services.workstations_watch(now=now - timedelta(minutes=1))
    heard(attempt, now)
    assert services.workstations_watch(now=now)["resumed"] == 1
    pause = fresh(attempt).pauses.get()
    assert pause.ended_at == now
    assert pause.ended_at - pause.started_at == timedelta(minutes=5)
    # An admin's technical pause is the admin's to end, host or no host.
    admin = factories.admin()
    services.attempt_pause(attempt=attempt, by=admin, reason=Pause.Reason.TECHNICAL, now=now + timedelta(seconds=1))
    assert services.workstations_watch(now=now + timedelta(seconds=2))["resumed"] == 0
    assert fresh(attempt).open_pause() is not None


def test_an_attempt_being_prepared_or_on_a_break_is_not_paused_again_and_a_break_ended_in_the_outage_is() -> None:
    preparing = factories.preparing(running_attempt())
    on_break = running_attempt()
    now = timezone.now()
    services.attempt_pause(
        attempt=on_break, by=on_break.user, reason=Pause.Reason.BREAK, now=now - timedelta(minutes=20)
    )
    for attempt in (preparing, on_break):
        heard(attempt, now - GRACE - timedelta(minutes=10))
    assert services.workstations_watch(now=now)["paused"] == 0
    assert fresh(preparing).pauses.count() == 0
    # The break ends (the expert resumes from a page that still loads) while the host is silent:
    # the outage pause begins where the break ended, not earlier.
    services.attempt_resume(attempt=on_break, by=on_break.user, now=now - timedelta(minutes=2))
    assert services.workstations_watch(now=now)["paused"] == 1
    assert fresh(on_break).open_pause().started_at == now - timedelta(minutes=2)


def test_a_deadline_that_came_before_the_grace_ran_out_is_not_moved() -> None:
    attempt = running_attempt(started_minutes_ago=8 * 60 + 1)  # its 8 hours ran out a minute ago
    now = timezone.now()
    # Silent for exactly the grace: a pause would begin now, after the deadline. The deadline stands.
    assert services.attempt_outage_pause(attempt=attempt, heard=now - GRACE, now=now) is False
    assert fresh(attempt).pauses.count() == 0
    # Had it gone silent earlier, the pause begins before the deadline and moves it.
    assert services.attempt_outage_pause(attempt=attempt, heard=now - GRACE - timedelta(minutes=3), now=now)


def test_an_answering_workstation_renews_the_sandbox_lease_and_a_silent_one_does_not() -> None:
    attempt = running_attempt()
    before = time.time()
    control = selectors.attempt_sandbox_control(attempt.pk)
    assert before + GRACE.total_seconds() <= control["lease_until"] <= time.time() + GRACE.total_seconds()
    assert services.workstations_watch()["renewed"] == 1
    heard(attempt, timezone.now() - GRACE - timedelta(seconds=1))
    assert services.workstations_watch()["renewed"] == 0


def test_the_attempt_page_says_the_workstation_is_not_answering_to_its_expert_and_no_one_else(
    settings: object,
) -> None:
    attempt = running_attempt()
    now = timezone.now()
    expert = Client()
    assert attempt.user is not None
    expert.force_login(attempt.user)
    assert "isn't answering" not in expert.get(f"/attempts/{attempt.pk}/").content.decode()
    heard(attempt, now - timedelta(seconds=90))
    html = expert.get(f"/attempts/{attempt.pk}/").content.decode()
    assert 'id="workstation-silent"' in html
    assert "isn't answering" in html
    assert "If it stays silent, the clock pauses from" in html
    # The live marker changed with it, so an open page fetches its live parts at once.
    clock = expert.get(f"/attempts/{attempt.pk}/clock/").json()
    heard(attempt, now)
    assert expert.get(f"/attempts/{attempt.pk}/clock/").json()["version"] != clock["version"]
    stranger = Client()
    stranger.force_login(factories.expert(username="stranger"))
    assert stranger.get(f"/attempts/{attempt.pk}/").status_code == 404


def test_a_scoring_job_waiting_on_a_silent_host_is_closed_with_an_entry_that_says_so() -> None:
    waiting = running_attempt()
    elsewhere = running_attempt()
    now = timezone.now()
    old = now - timedelta(minutes=settings.SCORING_QUEUED_ON_SILENT_HOST_MINUTES + 1)
    jobs = []
    for attempt in (waiting, elsewhere):
        job = ScoringJob.objects.create(attempt=attempt, queue_name=attempt.workstation.queue_name)
        ScoringJob.objects.filter(pk=job.pk).update(created_at=old)
        jobs.append(job)
    heard(waiting, now - GRACE - timedelta(minutes=40))
    heard(elsewhere, now)  # a long queue on a host that answers: it waits its turn
    assert scoring_jobs_recover(now=now) == {str(jobs[0].pk): "closed"}
    closed = ScoringJob.objects.get(pk=jobs[0].pk)
    assert closed.status == ScoringJob.Status.FAILED
    assert closed.entry.score is None
    assert closed.entry.message.startswith(f"Not scored: {waiting.workstation.name} stopped answering")
    assert "nothing else can score it" in closed.entry.message
    assert ScoringJob.objects.get(pk=jobs[1].pk).status == ScoringJob.Status.QUEUED
