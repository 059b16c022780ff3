"""The role matrix: every page × every role is allowed or refused as designed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from graders.imports.models import RunImport
from review import services as review_services
from review.classifier.models import RedTeamAttempt
from review.models import Completion, ImportJob
from tests import factories

ROLES = ("anonymous", "expert", "other_expert", "reviewer", "admin")
ALLOWED = {200, 302}


@dataclass(frozen=True)
class Page:
    name: str
    method: str
    allowed: frozenset[str]
    kwargs: str = ""  # which object the URL needs: attempt, reservation, workstation, environment


PAGES = [
    Page("trials:my", "get", frozenset({"expert", "other_expert"})),
    Page("trials:book", "get", frozenset({"expert", "other_expert", "admin"})),
    Page("trials:book-environment", "get", frozenset({"expert", "other_expert"}), "environment"),
    Page("trials:reservations", "get", frozenset({"admin"})),
    Page("trials:reservation-end", "post", frozenset({"admin"}), "reservation"),
    Page("trials:attempt", "get", frozenset({"expert", "admin"}), "attempt"),
    Page("trials:attempt-clock", "get", frozenset({"expert", "admin"}), "attempt"),
    Page("trials:attempt-live", "get", frozenset({"expert", "admin"}), "attempt"),
    Page("trials:attempt-pause", "post", frozenset({"expert", "admin"}), "attempt"),
    Page("trials:attempt-resume", "post", frozenset({"expert", "admin"}), "attempt"),
    Page("trials:attempt-note", "post", frozenset({"expert"}), "attempt"),
    Page("trials:attempt-submit", "post", frozenset({"expert"}), "attempt"),
    Page("trials:attempt-end", "post", frozenset({"admin"}), "attempt"),
    Page("trials:attempt-exclude", "post", frozenset({"admin"}), "attempt"),
    Page("trials:attempt-include", "post", frozenset({"admin"}), "attempt"),
    Page("trials:attempt-technical-pause", "post", frozenset({"admin"}), "attempt"),
    Page("trials:attempt-start", "post", frozenset({"expert"}), "reservation"),
    Page("trials:reservation-cancel", "post", frozenset({"expert", "admin"}), "reservation"),
    Page("trials:attempt-list", "get", frozenset({"admin"})),
    Page("trials:schedule", "get", frozenset({"admin"})),
    Page("trials:workstations", "get", frozenset({"admin"})),
    Page("trials:workstation", "get", frozenset({"admin"}), "workstation"),
    Page("environments:list", "get", frozenset({"expert", "other_expert", "admin"})),
    Page("environments:detail", "get", frozenset({"expert", "other_expert", "admin"}), "environment"),
    Page("review:home", "get", frozenset({"reviewer", "admin"})),
    # Grading.
    Page("graders:attempt-score", "post", frozenset({"expert", "admin"}), "attempt"),
    Page("graders:attempt-scores", "get", frozenset({"expert", "admin"}), "attempt"),
    Page("graders:jobs", "get", frozenset({"admin"})),
    Page("graders:job-rerun", "post", frozenset({"admin"})),
    Page("graders:job-close", "post", frozenset({"admin"})),
    Page("environments:task-family-register", "get", frozenset({"admin"})),
    # Terminal recordings: admins only, not even the attempt's own expert.
    Page("trials:terminal-replay", "get", frozenset({"admin"}), "attempt"),
    Page("trials:terminal-cast", "get", frozenset({"admin"}), "attempt"),
    # Run imports: admins only.
    Page("run_imports:list", "get", frozenset({"admin"})),
    Page("run_imports:rows", "get", frozenset({"admin"})),
    Page("run_imports:detail", "get", frozenset({"admin"}), "run_import"),
    Page("run_imports:progress", "get", frozenset({"admin"}), "run_import"),
    # Leaderboards: admins; an expert has "My results" and exports of their own rows.
    Page("leaderboards:overview", "get", frozenset({"admin"})),
    Page("leaderboards:environment", "get", frozenset({"admin"}), "environment"),
    Page("leaderboards:mine", "get", frozenset({"expert", "other_expert", "admin"})),
    Page("leaderboards:compute", "post", frozenset({"admin"})),
    Page("leaderboards:export", "get", frozenset({"expert", "other_expert", "admin"}), "leaderboard_export"),
    Page("trials:attempt-message", "post", frozenset({"admin"}), "attempt"),
    # Review queues: reviewers label; admins build queues, read quality, import.
    Page("review:label", "get", frozenset({"reviewer"}), "review_queue"),
    Page("review:item-next", "get", frozenset({"reviewer"}), "review_queue"),
    Page("review:label-submit", "post", frozenset({"reviewer"}), "review_queue"),
    Page("review:label-skip", "post", frozenset({"reviewer"}), "review_queue"),
    Page("review:label-undo", "post", frozenset({"reviewer"}), "review_queue"),
    Page("review:lease-renew", "post", frozenset({"reviewer"}), "review_queue"),
    Page("review:lease-release", "post", frozenset({"reviewer"}), "review_queue"),
    Page("review:my-labels", "get", frozenset({"reviewer"})),
    Page("review:label-edit", "post", frozenset({"reviewer"}), "review_label"),
    Page("review:completions", "get", frozenset({"admin"})),
    Page("review:queues", "get", frozenset({"admin"})),
    Page("review:queue-new", "get", frozenset({"admin"})),
    Page("review:queue", "get", frozenset({"admin"}), "review_queue"),
    Page("review:queue-export", "get", frozenset({"admin"}), "review_queue"),
    Page("review:queue-close", "post", frozenset({"admin"}), "review_queue"),
    Page("review:reviewers", "get", frozenset({"admin"})),
    Page("review:import", "get", frozenset({"admin"})),
    Page("review:import-job", "get", frozenset({"admin"}), "review_import"),
    # Review classifier: versions, threshold and dashboard for admins; the red-team tool for reviewers.
    Page("classifier:versions", "get", frozenset({"admin"})),
    Page("classifier:_versions", "get", frozenset({"admin"})),
    Page("classifier:train", "post", frozenset({"admin"})),
    Page("classifier:activate", "post", frozenset({"admin"})),
    Page("classifier:threshold", "get", frozenset({"admin"})),
    Page("classifier:dashboard", "get", frozenset({"admin"})),
    Page("classifier:red-team", "get", frozenset({"reviewer", "admin"})),
    Page("classifier:red-team-start", "post", frozenset({"reviewer", "admin"})),
    Page("classifier:red-team-submit", "post", frozenset({"reviewer", "admin"})),
    Page("classifier:red-team-attempt", "get", frozenset({"reviewer"}), "red_team_attempt"),
    # Accounts: every logged-in user changes their own password (the reset pages are public, below).
    Page("password_change", "get", frozenset({"expert", "other_expert", "reviewer", "admin"})),
    Page("password_change_done", "get", frozenset({"expert", "other_expert", "reviewer", "admin"})),
    # Every logged-in user picks the zone their pages show times in.
    Page("time_zone", "get", frozenset({"expert", "other_expert", "reviewer", "admin"})),
    Page("audit-log", "get", frozenset({"admin"})),
]
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


def review_queue(admin):  # type: ignore[no-untyped-def]
    Completion.objects.create(prompt="Once", text="upon a time.")
    return review_services.queue_create(created_by=admin, name="matrix", policy="random")


def review_label(admin, reviewer):  # type: ignore[no-untyped-def]
    """The reviewer's own label, on a queue of its own; anyone else's is a 404."""
    Completion.objects.create(prompt="Twice", text="upon a time.")
    queue = review_services.queue_create(created_by=admin, name="labelled", policy="random")
    lease = review_services.lease_next(queue=queue, reviewer=reviewer)
    return review_services.label_submit(reviewer=reviewer, assignment_id=lease.pk, value="safe").label


@pytest.fixture
def world(db):  # type: ignore[no-untyped-def]
    users = {
        "expert": factories.expert(username="ada"),
        "other_expert": factories.expert(username="grace"),
        "reviewer": factories.reviewer(username="rita"),
        "admin": factories.admin(username="root"),
    }
    attempt = factories.AttemptFactory(reservation__expert=users["expert"])
    upcoming = factories.ReservationFactory(
        expert=users["expert"], workstation=attempt.workstation, starts_at=timezone.now() + timedelta(days=1)
    )
    objects = {
        "attempt": {"pk": attempt.pk},
        "reservation": {"pk": upcoming.pk},
        "workstation": {"pk": attempt.workstation.pk},
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
    }
    return users, objects


def client_for(role: str, users: dict) -> Client:  # type: ignore[type-arg]
    client = Client()
    if role != "anonymous":
        client.force_login(users[role])
    return client


def url_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns: list, namespace: str | None) -> None:  # type: ignore[type-arg]
        for p in patterns:
            if isinstance(p, URLResolver):
                if p.namespace in {"admin"} or str(p.pattern).startswith("api/"):
                    continue
                walk(p.url_patterns, p.namespace or namespace)
            elif isinstance(p, URLPattern) and p.name:
                names.add(f"{namespace}:{p.name}" if namespace else p.name)

    walk(get_resolver().url_patterns, None)
    return names


def test_every_named_page_is_in_the_role_matrix() -> None:
    covered = {page.name for page in PAGES} | PUBLIC
    assert url_names() - covered == set()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_allows_its_roles_and_refuses_the_others(world, page: Page, role: str) -> None:  # type: ignore[no-untyped-def]
    from django.urls import reverse

    users, objects = world
    url = reverse(page.name, kwargs=objects[page.kwargs] if page.kwargs else None)
    response = getattr(client_for(role, users), page.method)(url)
    if role == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    elif role in page.allowed:
        assert response.status_code in ALLOWED, (page.name, role, response.status_code)
        if response.status_code == 302:
            assert not response["Location"].startswith("/accounts/login/")
    else:
        assert response.status_code in {403, 404}, (page.name, role, response.status_code)


@pytest.mark.parametrize(
    ("role", "lands_on"),
    [("expert", "/my/"), ("reviewer", "/review/"), ("admin", "/schedule/")],
)
def test_home_sends_each_role_to_its_own_start_page(world, role: str, lands_on: str) -> None:  # type: ignore[no-untyped-def]
    users, _ = world
    response = client_for(role, users).get("/")
    assert response.status_code == 302
    assert response["Location"] == lands_on


def test_home_tells_a_user_without_a_role_to_ask_an_admin(db) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(factories.UserFactory(username="nobody"))
    response = client.get("/")
    assert response.status_code == 403
    assert b"No role yet" in response.content


def test_django_admin_is_for_staff_only(world) -> None:  # type: ignore[no-untyped-def]
    users, _ = world
    assert client_for("admin", users).get("/admin/").status_code == 200
    response = client_for("expert", users).get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_navigation_shows_each_role_its_own_pages(world) -> None:  # type: ignore[no-untyped-def]
    users, _ = world
    expert_nav = client_for("expert", users).get("/my/").content.decode()
    assert "Book a slot" in expert_nav
    assert "Schedule" not in expert_nav
    admin_nav = client_for("admin", users).get("/schedule/").content.decode()
    assert "Workstations" in admin_nav
    assert "Book a slot" not in admin_nav
    reviewer_nav = client_for("reviewer", users).get("/review/").content.decode()
    assert "Review" in reviewer_nav
    assert "Schedule" not in reviewer_nav
    assert "Book a slot" not in reviewer_nav
