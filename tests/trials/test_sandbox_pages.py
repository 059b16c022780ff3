"""What the pages and `manage.py check` say about the sandbox: frozen attempts, workstations that can't sandbox."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests import factories
from trials import services
from trials.models import Attempt, Pause, Workstation

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def running(expert) -> Attempt:
    reservation = factories.ReservationFactory.create(expert=expert, workstation__backend=Workstation.Backend.LOCAL)
    return factories.AttemptFactory.create(reservation=reservation)


def test_the_attempt_page_says_the_processes_are_frozen_during_a_break_and_why(running: Attempt) -> None:
    page = logged_in(running.user).get(reverse("trials:attempt", args=[running.pk])).content.decode()
    assert 'id="frozen-note"' not in page
    services.attempt_pause(attempt=running, by=running.user, reason=Pause.Reason.BREAK)
    page = logged_in(running.user).get(reverse("trials:attempt", args=[running.pk])).content.decode()
    assert 'id="frozen-note"' in page
    assert "paused for the break" in page


def test_with_background_work_allowed_a_break_freezes_nothing_and_the_page_says_so(running: Attempt, settings) -> None:
    settings.SANDBOX_BREAK_BACKGROUND_WORK = True
    services.attempt_pause(attempt=running, by=running.user, reason=Pause.Reason.BREAK)
    page = logged_in(running.user).get(reverse("trials:attempt", args=[running.pk])).content.decode()
    assert 'id="frozen-note"' not in page
    assert 'id="break-background-note"' in page


def test_an_ended_attempts_page_says_it_was_frozen_for_the_final_score(expert) -> None:
    reservation = factories.ReservationFactory.create(expert=expert, workstation__backend=Workstation.Backend.LOCAL)
    attempt = factories.AttemptFactory.create(
        reservation=reservation, started_at=timezone.now() - timedelta(hours=9), time_limit=timedelta(hours=8)
    )
    page = logged_in(expert).get(reverse("trials:attempt", args=[attempt.pk])).content.decode()
    assert "final score is taken from this state" in page


def test_a_workstation_that_cant_sandbox_says_why_on_its_pages(admin_user, workstation) -> None:
    services.workstation_record_heartbeat(workstation_id=workstation.pk, sandbox_problems=["cgroups are not writable"])
    client = logged_in(admin_user)
    for url in (reverse("trials:workstations"), reverse("trials:workstation", args=[workstation.pk])):
        page = client.get(url).content.decode()
        assert "can't sandbox attempts" in page
        assert "cgroups are not writable" in page


def test_unsafe_mode_is_red_on_every_admin_page_and_never_shown_to_experts(
    admin_user, expert, workstation, settings
) -> None:
    services.workstation_record_heartbeat(workstation_id=workstation.pk, sandbox_problems=["no bubblewrap"])
    assert 'class="unsafe-sandbox"' not in logged_in(admin_user).get(reverse("trials:schedule")).content.decode()
    settings.SANDBOX_ALLOW_UNSAFE = True
    page = logged_in(admin_user).get(reverse("trials:schedule")).content.decode()
    assert 'class="unsafe-sandbox"' in page
    assert f"{workstation.name}: no bubblewrap" in page
    assert 'class="unsafe-sandbox"' not in logged_in(expert).get(reverse("trials:my")).content.decode()


def test_manage_py_check_names_what_stops_the_sandbox_and_the_unsafe_setting_turns_it_into_a_warning(settings) -> None:
    from workstation import capabilities

    settings.SANDBOX_BWRAP = "/nonexistent/bwrap"
    capabilities.local_report(fresh=True)
    try:
        out = StringIO()
        with pytest.raises(CommandError, match=r"SystemCheckError|trials\.E001"):
            call_command("check", stdout=out, stderr=out)
        settings.SANDBOX_ALLOW_UNSAFE = True
        capabilities.local_report(fresh=True)
        call_command("check", stdout=out, stderr=out)
        assert "trials.W001" in out.getvalue()
        assert "bubblewrap is not installed" in out.getvalue()
        env = StringIO()
        settings.SANDBOX_ALLOW_UNSAFE = False
        call_command("sandbox_check", "--env", stdout=env, stderr=StringIO())
        assert env.getvalue().strip() == "SANDBOX_ALLOW_UNSAFE=true"
    finally:
        settings.SANDBOX_BWRAP = "bwrap"
        capabilities.local_report(fresh=True)
