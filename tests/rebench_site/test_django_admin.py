"""Every model in the Django admin: registered, its list and its page open with a row in them, in few queries.

Records the site writes through its services (the audit log, terminal sessions, tokens, leaderboard
snapshots, classifier scores, the review queues' items, slots and leases) are shown read-only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import connection, models
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token, TokenProxy

from audit.services import audit_record
from environments.models import TaskFamily, TaskStandardTask
from environments.services import environment_configuration_for
from graders.imports.models import RunImport
from graders.leaderboards.models import LeaderboardRecompute, LeaderboardSnapshot
from graders.models import AttemptScore, ModelCall, ScoreLogEntry, ScoringJob
from rebench_site.models import Profile
from review.classifier.models import ClassifierScore, ClassifierVersion, RedTeamAttempt
from review.models import Assignment, Completion, ImportJob, Label, LabelRevision, QueueItem, ReviewQueue, Slot
from tests import factories
from trials.models import AttemptToken, Note, Pause, SSHKey, TerminalSession

pytestmark = pytest.mark.django_db

# The packages of the project's own apps (settings.INSTALLED_APPS; workstation has no models yet).
PROJECT_PACKAGES = ("audit", "environments", "graders", "review", "trials", "workstation", "rebench_site")
# Third-party models left out of the admin, on purpose:
# - admin.LogEntry: the admin's own history of edits, shown as "Recent actions";
# - auth.Permission, contenttypes.ContentType: written by migrations, granted through users and groups;
# - sessions.Session: encoded session data (who is logged in), nothing an admin edits by hand;
# - authtoken.Token: DRF registers it through its proxy TokenProxy (listed by user, as DRF's admin does);
# - axes.AccessAttemptExpiration: axes' own expiry bookkeeping for each AccessAttempt, which is listed.
TOKEN_SECRET = "s3cret-token-of-the-shell"  # a test value, checked never to appear
TOKENS_MADE = itertools.count()


def project_models() -> list[type[models.Model]]:
    return [m for m in apps.get_models() if m.__module__.split(".")[0] in PROJECT_PACKAGES]


def an_attempt() -> Any:
    return factories.AttemptFactory.create()


def a_label() -> Label:
    """A queue with an item, its slot, a reviewer's lease on it and the label they gave."""
    now = timezone.now()
    queue = ReviewQueue.objects.create(name="first pass")
    completion = Completion.objects.create(prompt="How do I?", text="You don't.", external_id="gen-1")
    item = QueueItem.objects.create(queue=queue, completion=completion, sort_key=0.5)
    slot = Slot.objects.create(queue=queue, item=item, index=0, sort_key=0.5, filled=True)
    reviewer = factories.reviewer(username="rita")
    assignment = Assignment.objects.create(
        queue=queue,
        item=item,
        slot=slot,
        reviewer=reviewer,
        state=Assignment.State.LABELED,
        leased_at=now,
        expires_at=now + timedelta(minutes=5),
    )
    Slot.objects.filter(pk=slot.pk).update(lease=assignment)
    return Label.objects.create(
        assignment=assignment, queue=queue, item=item, completion=completion, reviewer=reviewer, value="safe"
    )


def a_task_standard_task() -> TaskStandardTask:
    family = TaskFamily.objects.create(name="demo_family", path="/srv/task-families/demo_family")
    return TaskStandardTask.objects.create(
        environment=factories.environment(), family=family, task_name="main", scoring="score"
    )


def axes_row(model: type[models.Model], **more: Any) -> models.Model:
    request = {"ip_address": "192.0.2.7", "user_agent": "curl/8", "http_accept": "*/*", "path_info": "/accounts/login/"}
    return model._default_manager.create(username="mallory", **request, **more)


def now_minus(minutes: int) -> Any:
    return timezone.now() - timedelta(minutes=minutes)


# One row of each registered model, made as the site makes it (factories, services) or directly.
# Each model's maker: what it returns is that model, so Any here.
MAKERS: dict[str, Callable[[], Any]] = {
    "auth.Group": lambda: Group.objects.create(name="auditors"),
    "auth.User": lambda: factories.expert(username="ada"),
    "rebench_site.Profile": lambda: Profile.objects.create(user=factories.expert(), time_zone="Europe/London"),
    "authtoken.TokenProxy": lambda: TokenProxy.objects.get(pk=Token.objects.create(user=factories.expert()).pk),
    "axes.AccessAttempt": lambda: axes_row(AccessAttempt, get_data="", post_data="", failures_since_start=1),
    "axes.AccessLog": lambda: axes_row(AccessLog),
    "axes.AccessFailureLog": lambda: axes_row(AccessFailureLog),
    "audit.AuditEvent": lambda: audit_record(
        actor=factories.admin(username="root"), action="attempt.end", subject="attempt 1", note="left early"
    ),
    "environments.Environment": factories.environment,
    "environments.EnvironmentConfiguration": lambda: environment_configuration_for(environment=factories.environment()),
    "environments.TaskFamily": lambda: a_task_standard_task().family,
    "environments.TaskStandardTask": a_task_standard_task,
    "trials.Workstation": factories.WorkstationFactory.create,
    "trials.Gpu": lambda: factories.WorkstationFactory.create(gpu_count=2).gpus.get(index=1),
    "trials.SSHKey": lambda: SSHKey.objects.create(
        user=factories.expert(),
        name="laptop",
        public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK",
        fingerprint="SHA256:x",
    ),
    "trials.Reservation": factories.ReservationFactory.create,
    "trials.Attempt": an_attempt,
    "trials.Pause": lambda: Pause.objects.create(
        attempt=an_attempt(), reason=Pause.Reason.BREAK, started_at=now_minus(10), ended_at=now_minus(5)
    ),
    "trials.Note": lambda: (a := an_attempt()).notes.create(
        author=a.user, body="stuck on the build", elapsed_seconds=60
    ),
    "trials.TerminalSession": lambda: TerminalSession.objects.create(
        attempt=an_attempt(), number=1, backend="ssh", tmux_session="rb-a1-1", recording_name="recordings/a1-1.cast"
    ),
    "trials.AttemptToken": lambda: AttemptToken.objects.create(
        attempt=an_attempt(), key_hash=AttemptToken.hash_of(f"{TOKEN_SECRET}-{next(TOKENS_MADE)}")
    ),
    "graders.ScoringJob": lambda: ScoringJob.objects.create(attempt=an_attempt(), queue_name="ws.gpu-box"),
    "graders.ScoreLogEntry": lambda: ScoreLogEntry.objects.create(
        attempt=an_attempt(), scored_at=timezone.now(), elapsed_seconds=60, score=0.5
    ),
    "graders.ModelCall": lambda: ModelCall.objects.create(
        attempt=an_attempt(), reserved_tokens=157, reserved_cost=0.0001, tokens=109, cost=0.0001545
    ),
    "graders.AttemptScore": lambda: AttemptScore.objects.create(
        attempt=an_attempt(), raw=0.5, normalised=0.25, valid_entries=1, computed_at=timezone.now()
    ),
    "leaderboards.LeaderboardSnapshot": lambda: LeaderboardSnapshot.objects.create(computed_at=timezone.now(), runs=3),
    "leaderboards.LeaderboardRecompute": lambda: LeaderboardRecompute.objects.create(
        dirty_since=now_minus(1), last_request_at=timezone.now(), requests=2
    ),
    "run_imports.RunImport": lambda: RunImport.objects.create(
        original_name="runs.jsonl", file="run_imports/runs.jsonl"
    ),
    "review.Completion": lambda: Completion.objects.create(prompt="How do I?", text="You don't."),
    "review.ReviewQueue": lambda: ReviewQueue.objects.create(name="first pass"),
    "review.QueueItem": lambda: a_label().item,
    "review.Slot": lambda: a_label().assignment.slot,
    "review.Assignment": lambda: a_label().assignment,
    "review.Label": a_label,
    "review.LabelRevision": lambda: LabelRevision.objects.create(
        label=(label := a_label()),
        changed_by=label.reviewer,
        changed_at=timezone.now(),
        value_before="safe",
        value_after="injurious",
    ),
    "review.ImportJob": lambda: ImportJob.objects.create(
        file="review-imports/batch.jsonl", original_name="batch.jsonl", format="jsonl", status="done"
    ),
    "classifier.ClassifierVersion": lambda: ClassifierVersion.objects.create(status="ready"),
    "classifier.RedTeamAttempt": lambda: RedTeamAttempt.objects.create(
        reviewer=factories.reviewer(), prompt="How do I?", started_at=timezone.now()
    ),
    "classifier.ClassifierScore": lambda: ClassifierScore.objects.create(
        version=ClassifierVersion.objects.create(status="ready"),
        completion=Completion.objects.create(prompt="How do I?", text="You don't."),
        score=0.9,
    ),
}

REGISTERED = sorted(admin.site._registry, key=lambda m: m._meta.label)


def admin_url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def superuser_client() -> Client:
    client = Client()
    client.force_login(factories.admin(username="boss", is_superuser=True))
    return client


def test_every_model_of_the_projects_own_apps_is_in_the_admin() -> None:
    missing = [m._meta.label for m in project_models() if m not in admin.site._registry]
    assert missing == []


def test_every_registered_model_has_a_row_maker_here() -> None:
    assert sorted(m._meta.label for m in REGISTERED) == sorted(MAKERS)


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_each_list_shows_the_tests_row_in_few_queries_and_its_page_opens(
    model: type[models.Model],
    superuser_client: Client,
    django_assert_max_num_queries: Any,
) -> None:
    row = MAKERS[model._meta.label]()
    assert isinstance(row, model)
    with django_assert_max_num_queries(15):  # a list_display through a relation without list_select_related fails
        listing = superuser_client.get(admin_url(model, "changelist"))
    assert listing.status_code == 200
    change_url = admin_url(model, "change", row.pk)
    assert change_url in listing.content.decode()
    page = superuser_client.get(change_url)
    assert page.status_code == 200


@pytest.mark.parametrize(
    "label",
    [
        "audit.AuditEvent",
        "trials.Pause",
        "trials.Note",
        "trials.TerminalSession",
        "trials.AttemptToken",
        "review.QueueItem",
        "review.Slot",
        "review.Assignment",
        "review.ImportJob",
        "classifier.ClassifierScore",
        "rebench_site.Profile",
    ],
)
def test_a_list_of_three_rows_costs_the_queries_of_a_list_of_one(label: str, superuser_client: Client) -> None:
    """The bound above can't see one query a row with a single row; three rows can."""
    model = apps.get_model(label)
    url = admin_url(model, "changelist")
    MAKERS[label]()
    superuser_client.get(url)  # the session and the content types, cached from here on
    with CaptureQueriesContext(connection) as one:
        superuser_client.get(url)
    MAKERS[label]()
    MAKERS[label]()
    with CaptureQueriesContext(connection) as three:
        listing = superuser_client.get(url)
    assert listing.context["cl"].result_count == 3
    assert len(three) == len(one)


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_someone_not_staff_is_sent_to_the_admins_login(model: type[models.Model]) -> None:
    expert = Client()
    expert.force_login(factories.expert(username="ada"))
    url = admin_url(model, "changelist")
    response = expert.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize(
    "label",
    [
        "audit.AuditEvent",
        "trials.TerminalSession",
        "trials.AttemptToken",
        "leaderboards.LeaderboardSnapshot",
        "leaderboards.LeaderboardRecompute",
        "classifier.ClassifierScore",
        "review.QueueItem",
        "review.Slot",
        "review.Assignment",
    ],
)
def test_records_are_read_only_even_for_a_superuser(label: str, superuser_client: Client) -> None:
    model = apps.get_model(label)
    row = MAKERS[label]()
    assert superuser_client.get(admin_url(model, "add")).status_code == 403
    assert superuser_client.post(admin_url(model, "change", row.pk), {}).status_code == 403
    assert "Save" not in superuser_client.get(admin_url(model, "change", row.pk)).content.decode()


def test_the_audit_log_and_terminal_sessions_cannot_be_deleted_but_a_token_can(superuser_client: Client) -> None:
    event = MAKERS["audit.AuditEvent"]()
    assert superuser_client.get(admin_url(type(event), "delete", event.pk)).status_code == 403
    session = MAKERS["trials.TerminalSession"]()
    assert superuser_client.get(admin_url(TerminalSession, "delete", session.pk)).status_code == 403
    token = MAKERS["trials.AttemptToken"]()
    assert superuser_client.post(admin_url(AttemptToken, "delete", token.pk), {"post": "yes"}).status_code == 302
    assert not AttemptToken.objects.filter(pk=token.pk).exists()


def test_a_tokens_secret_and_hash_are_shown_nowhere(superuser_client: Client) -> None:
    token = MAKERS["trials.AttemptToken"]()
    pages = [
        superuser_client.get(admin_url(AttemptToken, "changelist")).content.decode(),
        superuser_client.get(admin_url(AttemptToken, "change", token.pk)).content.decode(),
    ]
    for page in pages:
        assert TOKEN_SECRET not in page
        assert token.key_hash not in page
    assert token.key_hash not in str(token)


def test_records_are_titled_by_who_what_and_when() -> None:
    note = MAKERS["trials.Note"]()
    assert str(note).startswith(f"note by {note.author.username} on attempt {note.attempt_id}, ")
    pause = MAKERS["trials.Pause"]()
    assert str(pause).startswith(f"break pause of attempt {pause.attempt_id}, ")
    assignment = MAKERS["review.Assignment"]()
    assert str(assignment).startswith(f"rita's lease on item {assignment.item_id} (Labeled), ")
    assert f"in {assignment.queue.name}" in str(assignment.item)
    token = MAKERS["trials.AttemptToken"]()
    assert str(token).startswith(f"token of attempt {token.attempt_id}, made ")


def test_records_search_by_attempt_number_and_by_name(superuser_client: Client) -> None:
    note = MAKERS["trials.Note"]()
    url = admin_url(Note, "changelist")
    by_number = superuser_client.get(url, {"q": str(note.attempt_id)})
    assert admin_url(Note, "change", note.pk) in by_number.content.decode()
    by_name = superuser_client.get(url, {"q": note.author.username})
    assert admin_url(Note, "change", note.pk) in by_name.content.decode()
    nobody = superuser_client.get(url, {"q": "nobody-at-all"})
    assert admin_url(Note, "change", note.pk) not in nobody.content.decode()
