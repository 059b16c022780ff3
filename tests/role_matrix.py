"""The role matrix's parts: each app's tests/<app>/test_roles.py lists its pages and who may open them,
and tests/rebench_site/test_roles.py checks that every named page is in one of those lists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from graders.imports.models import RunImport
from review import services as review_services
from review.classifier.models import RedTeamAttempt
from review.models import Completion, ImportJob
from tests import factories
from trials.models import SSHKey

ROLES = ("anonymous", "expert", "other_expert", "reviewer", "admin")
ALLOWED = {200, 302}
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


@dataclass(frozen=True)
class Page:
    name: str
    method: str
    allowed: frozenset[str]
    kwargs: str = ""  # which object the URL needs: attempt, reservation, workstation, environment, ...
    # What else an allowed role may be answered: a form posted empty is a 400 naming the missing field.
    answers: frozenset[int] = frozenset()


# Outside the matrix: home (it sends each role on, tested below), logging in and out, the schema, and the
# password reset pages, which anyone may open (tests/rebench_site/test_passwords.py).
PUBLIC = {
    "home",
    "login",
    "logout",
    "api-schema",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "admin_password_reset",
}


def review_queue(admin):
    Completion.objects.create(prompt="Once", text="upon a time.")
    return review_services.queue_create(created_by=admin, name="matrix", policy="random")


def review_label(admin, reviewer):
    """The reviewer's own label, on a queue of its own; anyone else's is a 404."""
    Completion.objects.create(prompt="Twice", text="upon a time.")
    queue = review_services.queue_create(created_by=admin, name="labelled", policy="random")
    lease = review_services.lease_next(queue=queue, reviewer=reviewer)
    return review_services.label_submit(reviewer=reviewer, assignment_id=lease.pk, value="safe").label


@pytest.fixture(scope="module")
def world_rows(django_db_setup, django_db_blocker):
    """The world, made once per test module inside a transaction rolled back after it.

    Each test's own transaction (the `db` fixture, requested by `world`) is then a savepoint inside
    this one: what a test's request writes is rolled back after it, and the next test finds the world
    as it was made. Made per test, it was most of the matrix's time (hundreds of tests, each making
    users, an attempt, a queue and a label).
    """
    with django_db_blocker.unblock(), transaction.atomic():
        yield _make_world()
        transaction.set_rollback(True)


@pytest.fixture
def world(db, world_rows):
    return world_rows


def _make_world():
    users = {
        "expert": factories.expert(username="ada"),
        "other_expert": factories.expert(username="grace"),
        "reviewer": factories.reviewer(username="rita"),
        "admin": factories.admin(username="root"),
    }
    attempt = factories.AttemptFactory.create(reservation__expert=users["expert"])
    upcoming = factories.ReservationFactory.create(
        expert=users["expert"], workstation=attempt.workstation, starts_at=timezone.now() + timedelta(days=1)
    )
    objects = {
        "attempt": {"pk": attempt.pk},
        "reservation": {"pk": upcoming.pk},
        "workstation": {"pk": attempt.workstation.pk},
        "gpu": {"pk": attempt.workstation.pk, "index": 0},
        "environment": {"slug": attempt.environment.slug},
        # A queued run import; its pages never open the file.
        "run_import": {"pk": RunImport.objects.create(original_name="runs.jsonl", file="run_imports/runs.jsonl").pk},
        "leaderboard_export": {"table": "humans", "fmt": "csv"},
        # The reviewer's own red-team attempt; anyone else's is a 404.
        "red_team_attempt": {
            "pk": RedTeamAttempt.objects.create(reviewer=users["reviewer"], prompt="Once", started_at=timezone.now()).pk
        },
        # A review queue over one completion, and an import job.
        "review_queue": {"pk": review_queue(users["admin"]).pk},
        "review_import": {"pk": ImportJob.objects.create(format="jsonl").pk},
        "review_label": {"pk": review_label(users["admin"], users["reviewer"]).pk},
        # The expert's SSH key; anyone else's is a 404.
        "ssh_key": {
            "pk": SSHKey.objects.create(user=users["expert"], name="laptop", public_key=ED25519, fingerprint="f").pk
        },
    }
    return users, objects


def client_for(role: str, users: dict[str, Any]) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(users[role])
    return client


def url_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns: list[Any], namespace: str | None) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                if p.namespace in {"admin"} or str(p.pattern).startswith("api/"):
                    continue
                walk(p.url_patterns, p.namespace or namespace)
            elif isinstance(p, URLPattern) and p.name:
                names.add(f"{namespace}:{p.name}" if namespace else p.name)

    walk(get_resolver().url_patterns, None)
    return names


def assert_page_allows_its_roles(world, page: Page, role: str) -> None:
    """Anonymous users go to the login page; the page's roles get it; every other role gets 403 or 404."""
    users, objects = world
    url = reverse(page.name, kwargs=objects[page.kwargs] if page.kwargs else None)
    response = getattr(client_for(role, users), page.method)(url)
    if role == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    elif role in page.allowed:
        assert response.status_code in ALLOWED | page.answers, (page.name, role, response.status_code)
        if response.status_code == 302:
            assert not response["Location"].startswith("/accounts/login/")
    else:
        assert response.status_code in {403, 404}, (page.name, role, response.status_code)
