"""The audit log: each admin action that changes a number or a clock is recorded with who, when and before → after."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from graders import services as grading
from graders.models import ScoringJob
from tests import factories
from trials import services
from trials.models import Attempt, Pause

pytestmark = pytest.mark.django_db


def only_event(action: str) -> AuditEvent:
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, [str(e) for e in AuditEvent.objects.all()]
    return events[0]


def test_pausing_giving_time_back_and_ending_an_attempt_are_recorded_with_the_deadline_before_and_after(
    admin_user: Any,
) -> None:
    now = timezone.now()
    attempt = factories.AttemptFactory.create(started_at=now - timedelta(hours=1))
    services.attempt_add_pause(
        attempt=attempt,
        by=admin_user,
        started_at=attempt.started_at,
        ended_at=now - timedelta(seconds=1),
        reason=Pause.Reason.TECHNICAL,
        note="the host rebooted",
        now=now,
    )
    added = only_event("attempt.add_time")
    assert (added.actor, added.actor_name, added.attempt_id) == (admin_user, admin_user.username, attempt.pk)
    # ISO times with the zone, as DjangoJSONEncoder writes them: the time given back moves the deadline later.
    assert added.before["deadline"].startswith(str(Attempt.objects.get(pk=attempt.pk).started_at.year))
    assert added.after["deadline"] > added.before["deadline"]
    assert added.after["reason"] == "technical"
    assert added.note == "the host rebooted"

    running_deadline = Attempt.objects.get(pk=attempt.pk).deadline()
    services.attempt_pause(attempt=attempt, by=admin_user, reason=Pause.Reason.ADMIN)
    paused = only_event("attempt.pause")
    assert paused.after == {"paused": "admin"}
    # The deadline the attempt had while it ran, not the one its new open pause gives it.
    assert paused.before == {"deadline": json.loads(json.dumps(running_deadline, cls=DjangoJSONEncoder))}
    services.attempt_resume(attempt=attempt, by=admin_user)
    assert only_event("attempt.resume").before == {"paused": "admin"}
    services.attempt_end_by_admin(attempt=attempt, by=admin_user)
    ended = only_event("attempt.end")
    assert (ended.before["status"], ended.after["status"]) == ("running", "ended")


def test_the_experts_own_break_and_the_systems_scoring_pause_are_not_admin_actions(expert: Any) -> None:
    attempt = factories.AttemptFactory.create(user=expert, reservation__expert=expert)
    services.attempt_pause(attempt=attempt, by=expert, reason=Pause.Reason.BREAK)
    services.attempt_resume(attempt=attempt, by=expert)
    services.attempt_pause(attempt=attempt, by=None, reason=Pause.Reason.SCORING)
    assert not AuditEvent.objects.exists()


def test_excluding_and_including_a_run_are_recorded(admin_user: Any) -> None:
    attempt = factories.AttemptFactory.create()
    services.attempt_exclude(attempt=attempt, by=admin_user, reason="test_run", note="my own try")
    services.attempt_include(attempt=attempt, by=admin_user)
    assert (only_event("attempt.exclude").after, only_event("attempt.exclude").note) == (
        {"excluded": "test_run"},
        "my own try",
    )
    assert only_event("attempt.include").before == {"excluded": "test_run", "note": "my own try"}


def test_closing_and_re_running_scoring_jobs_are_recorded(attempt_on: Callable[..., Attempt], admin_user: Any) -> None:
    attempt = attempt_on("grading_test_ok")
    assert attempt.user is not None
    job = grading.scoring_job_request(attempt=attempt, by=attempt.user)
    grading.scoring_job_begin(job_id=str(job.pk))
    grading.scoring_job_close(job=job, by=admin_user)
    closed = only_event("scoring.close")
    assert (closed.before["status"], closed.after["status"], closed.attempt_id) == ("running", "failed", attempt.pk)
    rerun = grading.scoring_job_rerun(job=ScoringJob.objects.get(pk=job.pk), by=admin_user)
    assert only_event("scoring.rerun").after == {"rerun": str(rerun.pk)}


def test_the_log_page_and_the_attempt_page_show_the_events_to_admins_only(admin_user: Any, expert: Any) -> None:
    attempt = factories.AttemptFactory.create(user=expert, reservation__expert=expert)
    services.attempt_exclude(attempt=attempt, by=admin_user, reason="technical", note="GPU fault")
    admin = Client()
    admin.force_login(admin_user)
    log = admin.get(reverse("audit-log"), {"action": "attempt.exclude"}).content.decode()
    assert "attempt.exclude" in log
    assert f"attempt {attempt.pk}" in log
    assert "GPU fault" in admin.get(reverse("trials:attempt", args=[attempt.pk])).content.decode()
    assert admin.get(reverse("audit-log"), {"action": "no-such"}).status_code == 200
    own = Client()
    own.force_login(expert)
    assert own.get(reverse("audit-log")).status_code == 403
    assert "GPU fault" not in own.get(reverse("trials:attempt", args=[attempt.pk])).content.decode()


def test_classifier_activation_and_threshold_are_recorded(
    admin_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from review.classifier import services as classifier
    from review.classifier.models import ClassifierVersion

    # A version as training leaves it (the weights are not read by activation or the threshold).
    version = ClassifierVersion.objects.create(status=ClassifierVersion.Status.READY)
    with django_capture_on_commit_callbacks():  # the job that scores new completions is not run here
        classifier.classifier_version_activate(version=version, by=admin_user)
    classifier.classifier_threshold_set(version=version, threshold="0.42", by=admin_user)
    assert only_event("classifier.activate").after == {"active": version.pk}
    threshold = only_event("classifier.threshold")
    assert (threshold.before["threshold"], threshold.after["threshold"]) == (None, 0.42)


def test_a_run_import_is_recorded_with_what_it_wrote(admin_user: Any, tmp_path: Any, settings: Any) -> None:
    import json

    from graders.imports import services as imports

    factories.environment()
    settings.MEDIA_ROOT = tmp_path / "media"
    path = tmp_path / "runs.jsonl"
    row = {"run_id": "r-1", "environment": "ai_rd_triton_cumsum", "participant_kind": "agent", "agent_name": "a"}
    path.write_text(json.dumps(row | {"time_limit_seconds": 7200, "elapsed_seconds": 60, "score": 0.9}) + "\n")
    with path.open("rb") as handle:
        created = imports.run_import_create(
            upload=handle, name=path.name, size=path.stat().st_size, kind="auto", by=admin_user, queue=False
        )
    imports.run_import_execute(run_import_id=created.pk)
    event = only_event("runs.import")
    assert event.actor == admin_user
    assert event.after == {
        "kind": "file",
        "configuration": "full",
        "runs_created": 1,
        "runs_updated": 0,
        "entries": 1,
    }
