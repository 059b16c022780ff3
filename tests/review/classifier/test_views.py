"""Classifier pages: versions, threshold, red-team tool and dashboard, each for its role and refused to others."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from review import services as review_services
from review.classifier.models import ClassifierVersion, RedTeamAttempt
from review.models import Completion, ReviewQueue
from tests import factories
from tests.review.classifier.conftest import INJURIOUS, PROMPT, SAFE, labelled_completions

pytestmark = pytest.mark.django_db

PASSING = "They shared a quiet picnic by the river."
FILTERED = "He fell from the roof and broke both legs."


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- versions ---------------------------------------------------------------------------------


def test_versions_page_shows_label_counts_and_versions_to_an_admin(
    active_classifier, admin_user, django_assert_max_num_queries
) -> None:
    ClassifierVersion.objects.create(status=ClassifierVersion.Status.FAILED, error="Too few labels")
    client = logged_in(admin_user)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("classifier:versions"))
    assert response.status_code == 200
    body = response.content.decode()
    assert f"version-{active_classifier.pk}" in body
    assert "active" in body
    assert "Too few labels" in body
    assert response.context["counts"] == {"injurious": 10, "safe": 10}


def test_versions_page_refuses_a_reviewer(reviewer) -> None:
    assert logged_in(reviewer).get(reverse("classifier:versions")).status_code == 403


def test_train_with_too_few_labels_says_how_many_are_needed(classifier_settings, admin_user, reviewer) -> None:
    labelled_completions([(INJURIOUS[0], "injurious")], reviewer=reviewer, admin=admin_user)
    response = logged_in(admin_user).post(reverse("classifier:train"), follow=True)
    assert any("4 more injurious and 5 more safe" in m for m in messages_of(response)), messages_of(response)
    assert not ClassifierVersion.objects.exists()


def test_train_queues_the_job_after_commit(
    classifier_settings, admin_user, reviewer, django_capture_on_commit_callbacks
) -> None:
    labelled_completions(
        [(t, "injurious") for t in INJURIOUS[:5]] + [(t, "safe") for t in SAFE[:5]], reviewer=reviewer, admin=admin_user
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = logged_in(admin_user).post(reverse("classifier:train"))
    assert response.status_code == 302
    version = ClassifierVersion.objects.get()
    assert version.status == ClassifierVersion.Status.QUEUED
    assert (version.injurious_count, version.safe_count) == (5, 5)
    assert len(callbacks) == 1
    # A second request while one is queued is refused rather than training twice.
    again = logged_in(admin_user).post(reverse("classifier:train"), follow=True)
    assert any("already being trained" in m for m in messages_of(again))


def test_activate_refuses_an_unknown_or_unready_version(classifier_settings, admin_user) -> None:
    client = logged_in(admin_user)
    response = client.post(reverse("classifier:activate"), {"version": "x"}, follow=True)
    assert any("no such classifier version" in m for m in messages_of(response))
    queued = ClassifierVersion.objects.create()
    response = client.post(reverse("classifier:activate"), {"version": queued.pk}, follow=True)
    assert any("Only a ready version" in m for m in messages_of(response))
    assert not ClassifierVersion.objects.filter(is_active=True).exists()


# --- threshold --------------------------------------------------------------------------------


def test_threshold_page_recommends_and_saves_a_threshold(active_classifier, admin_user) -> None:
    client = logged_in(admin_user)
    response = client.get(reverse("classifier:threshold"), {"target_recall": "0.9"})
    assert response.status_code == 200
    table = response.context["table"]
    assert table.recommended is not None
    body = response.content.decode()
    assert "Clopper–Pearson" in body
    assert 'id="threshold-chart"' in body
    assert "vega-lite-6.5.0.min.js" in body
    response = client.post(
        reverse("classifier:threshold"),
        {"version": active_classifier.pk, "threshold": f"{table.recommended:.6f}", "target_recall": "0.9"},
    )
    assert response.status_code == 302
    active_classifier.refresh_from_db()
    assert active_classifier.threshold == pytest.approx(table.recommended, abs=1e-6)
    assert active_classifier.threshold_target_recall == 0.9
    assert active_classifier.threshold_set_by == admin_user
    said = client.get(response["Location"]).content.decode()
    assert f"set to {active_classifier.threshold:g}." in said  # the value saved, not None


def test_threshold_page_refuses_a_bad_threshold_naming_the_field(active_classifier, admin_user) -> None:
    response = logged_in(admin_user).post(
        reverse("classifier:threshold"), {"version": active_classifier.pk, "threshold": "2"}
    )
    assert response.status_code == 400
    assert "threshold: must be between 0 and 1" in response.content.decode()
    active_classifier.refresh_from_db()
    assert active_classifier.threshold == 0.5


def test_threshold_page_explains_a_bad_target_recall_and_an_unknown_version(active_classifier, admin_user) -> None:
    client = logged_in(admin_user)
    response = client.get(reverse("classifier:threshold"), {"target_recall": "7"})
    assert response.status_code == 200
    assert "Target recall must be above 0" in response.content.decode()
    assert client.get(reverse("classifier:threshold"), {"version": "999999"}).status_code == 404


def test_threshold_page_without_a_version_says_to_train_one(admin_user) -> None:
    response = logged_in(admin_user).get(reverse("classifier:threshold"))
    assert response.status_code == 200
    assert "No trained version yet" in response.content.decode()


def test_threshold_page_refuses_a_reviewer(reviewer) -> None:
    assert logged_in(reviewer).get(reverse("classifier:threshold")).status_code == 403


# --- red team ---------------------------------------------------------------------------------


def test_red_team_home_lists_injurious_starting_points_and_refuses_an_expert(active_classifier, reviewer) -> None:
    response = logged_in(reviewer).get(reverse("classifier:red-team"))
    assert response.status_code == 200
    starts = response.context["starts"]
    assert starts
    assert all(c.text in INJURIOUS for c in starts)
    assert logged_in(factories.expert(username="ada")).get(reverse("classifier:red-team")).status_code == 403


def test_a_reviewer_starts_from_a_completion_and_only_they_see_the_attempt(active_classifier, reviewer) -> None:
    start = Completion.objects.get(text=INJURIOUS[0])
    response = logged_in(reviewer).post(reverse("classifier:red-team-start"), {"completion": start.pk})
    attempt = RedTeamAttempt.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("classifier:red-team-attempt", args=[attempt.pk])
    assert (attempt.prompt, attempt.start_text, attempt.version) == (PROMPT, INJURIOUS[0], active_classifier)
    assert attempt.start_score is not None
    assert attempt.start_score > 0.5
    page = logged_in(reviewer).get(response["Location"])
    assert page.status_code == 200
    assert INJURIOUS[0] in page.content.decode()
    other = factories.reviewer(username="rob")
    assert logged_in(other).get(response["Location"]).status_code == 404


def test_starting_needs_a_prompt_and_an_active_classifier(classifier_settings, reviewer) -> None:
    response = logged_in(reviewer).post(reverse("classifier:red-team-start"), {"prompt": "x"}, follow=True)
    assert any("No classifier version is active" in m for m in messages_of(response))
    assert not RedTeamAttempt.objects.exists()


def test_starting_without_a_prompt_is_refused(active_classifier, reviewer) -> None:
    response = logged_in(reviewer).post(reverse("classifier:red-team-start"), {"prompt": "  "}, follow=True)
    assert any(m.startswith("prompt:") for m in messages_of(response))
    assert not RedTeamAttempt.objects.exists()


def test_a_rewrite_the_classifier_still_filters_is_refused(active_classifier, reviewer) -> None:
    client = logged_in(reviewer)
    client.post(reverse("classifier:red-team-start"), {"prompt": PROMPT, "text": FILTERED})
    attempt = RedTeamAttempt.objects.get()
    response = client.post(reverse("classifier:red-team-submit"), {"attempt": attempt.pk, "text": FILTERED})
    assert response.status_code == 400
    # The server checks the score itself (the page's disabled Submit is a convenience) and names the field.
    assert "text: scores " in response.content.decode()
    assert "still filters it" in response.content.decode()
    attempt.refresh_from_db()
    assert attempt.submitted_at is None
    assert not Completion.objects.filter(source=Completion.Source.RED_TEAM).exists()
    empty = client.post(reverse("classifier:red-team-submit"), {"attempt": attempt.pk, "text": "   "})
    assert empty.status_code == 400
    assert "text: is empty" in empty.content.decode()


def test_a_passing_rewrite_goes_to_the_verify_queue_and_counts_as_a_success_once_labelled_injurious(
    active_classifier, reviewer, admin_user
) -> None:
    client = logged_in(reviewer)
    client.post(reverse("classifier:red-team-start"), {"prompt": PROMPT, "text": FILTERED})
    attempt = RedTeamAttempt.objects.get()
    response = client.post(reverse("classifier:red-team-submit"), {"attempt": attempt.pk, "text": PASSING})
    assert response.status_code == 302
    attempt.refresh_from_db()
    rewrite = attempt.rewrite
    assert rewrite.source == Completion.Source.RED_TEAM
    assert rewrite.text == PASSING
    assert attempt.final_score is not None
    assert attempt.final_score < 0.5
    assert rewrite.classifier_score == pytest.approx(attempt.final_score)
    verify = ReviewQueue.objects.get(policy=ReviewQueue.Policy.VERIFY)
    assert verify.items.filter(completion=rewrite).exists()
    # Submitting again is refused: one attempt, one rewrite.
    again = client.post(reverse("classifier:red-team-submit"), {"attempt": attempt.pk, "text": PASSING})
    assert again.status_code == 400
    stats = logged_in(reviewer).get(reverse("classifier:red-team")).context["stats"]
    assert (stats[0].tried, stats[0].submitted, stats[0].successes, stats[0].pending) == (1, 1, 0, 1)
    # Reviewers label it injurious in the verify queue (the humans say the attack worked).
    checkers = [factories.reviewer(username=f"check{i}") for i in range(verify.overlap)]
    for checker in checkers:
        assignment = review_services.lease_next(queue=verify, reviewer=checker)
        assert assignment.item.completion_id == rewrite.pk
        review_services.label_submit(reviewer=checker, assignment_id=assignment.pk, value="injurious")
    stats = logged_in(reviewer).get(reverse("classifier:red-team")).context["stats"]
    assert (stats[0].successes, stats[0].pending) == (1, 0)
    assert stats[0].minutes_per_success is not None
    page = client.get(reverse("classifier:red-team-attempt", args=[attempt.pk]))
    assert page.context["outcome"] == "success"


def test_submit_refuses_someone_elses_attempt(active_classifier, reviewer) -> None:
    logged_in(reviewer).post(reverse("classifier:red-team-start"), {"prompt": PROMPT, "text": FILTERED})
    attempt = RedTeamAttempt.objects.get()
    other = logged_in(factories.reviewer(username="rob"))
    response = other.post(reverse("classifier:red-team-submit"), {"attempt": attempt.pk, "text": PASSING}, follow=True)
    assert any("no such red-team attempt of yours" in m for m in messages_of(response))
    attempt.refresh_from_db()
    assert attempt.submitted_at is None


# --- dashboard --------------------------------------------------------------------------------


def test_dashboard_shows_queues_classifier_threshold_and_unsafe_rate(
    active_classifier, admin_user, django_assert_max_num_queries
) -> None:
    client = logged_in(admin_user)
    with django_assert_max_num_queries(30):
        response = client.get(reverse("classifier:dashboard"))
    assert response.status_code == 200
    body = response.content.decode()
    assert f"v{active_classifier.pk}" in body
    assert 'id="dashboard-threshold">0.5000' in body
    assert 'id="dashboard-unsafe-rate"' in body
    assert response.context["at_threshold"].passed > 0
    assert response.context["labels_today"] == 20
    assert "Leaderboard not computed yet." in body


def test_dashboard_shows_the_latest_leaderboard_when_there_is_one(admin_user) -> None:
    from django.utils import timezone

    from graders.leaderboards.models import LeaderboardSnapshot

    curve = {
        "environment": "overall",
        "group": "human",
        "group_label": "Human experts",
        "kind": "human",
        "run_length_hours": 8.0,
        "runs": 3,
        "points": [{"budget_hours": 8.0, "k": 1, "value": 0.42, "ci_low": 0.3, "ci_high": 0.55, "note": ""}],
    }
    LeaderboardSnapshot.objects.create(
        computed_at=timezone.now(), data={"curves": [curve], "highlight_hours": [2.0, 8.0, 32.0], "environments": []}
    )
    response = logged_in(admin_user).get(reverse("classifier:dashboard"))
    body = response.content.decode()
    assert "Human experts" in body
    assert "0.420" in body
    assert "Leaderboard not computed yet." not in body


def test_dashboard_refuses_a_reviewer(reviewer) -> None:
    assert logged_in(reviewer).get(reverse("classifier:dashboard")).status_code == 403


def test_django_admin_lists_versions_and_red_team_attempts(active_classifier, reviewer) -> None:
    RedTeamAttempt.objects.create(reviewer=reviewer, prompt=PROMPT, started_at=active_classifier.created_at)
    superuser = factories.UserFactory.create(username="su", is_staff=True, is_superuser=True)
    client = logged_in(superuser)
    versions = client.get(reverse("admin:classifier_classifierversion_changelist"))
    assert versions.status_code == 200
    assert f"/{active_classifier.pk}/change/" in versions.content.decode()
    assert client.get(reverse("admin:classifier_redteamattempt_changelist")).status_code == 200
    assert logged_in(reviewer).get(reverse("admin:classifier_classifierversion_changelist")).status_code == 302
