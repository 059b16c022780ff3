"""Training versions from the review labels, held-out metrics, rescoring, activation and the threshold."""

from __future__ import annotations

import pytest

from rebench_site.errors import ServiceError
from review.classifier import selectors, services
from review.classifier.models import ClassifierScore, ClassifierVersion
from review.models import Completion
from tests.review.classifier.conftest import (
    HELDOUT_INJURIOUS,
    HELDOUT_SAFE,
    INJURIOUS,
    SAFE,
    labelled_completions,
    training_set,
)

pytestmark = pytest.mark.django_db


def trained_version(admin_user) -> ClassifierVersion:
    version = ClassifierVersion.objects.create(created_by=admin_user)
    return services.classifier_version_train(version_id=version.pk)


def test_training_is_refused_with_too_few_labels_and_says_how_many_more(
    classifier_settings, reviewer, admin_user
) -> None:
    labelled_completions(
        [(t, "injurious") for t in INJURIOUS[:3]] + [(t, "safe") for t in SAFE[:6]], reviewer=reviewer, admin=admin_user
    )
    with pytest.raises(ServiceError) as refused:
        services.classifier_version_request(by=admin_user)
    assert refused.value.field == "labels"
    assert "3 injurious" in refused.value.message
    assert "2 more injurious" in refused.value.message
    assert "safe consensus" not in refused.value.message  # safe has enough
    assert not ClassifierVersion.objects.exists()


def test_unsure_labels_and_labels_short_of_the_overlap_are_not_training_labels(
    classifier_settings, reviewer, admin_user
) -> None:
    labelled_completions(
        [("It was fine.", "unsure"), ("He broke a leg.", "injurious")], reviewer=reviewer, admin=admin_user
    )
    from review import services as review_services

    Completion.objects.create(prompt="p", text="Half-labelled.", batch="half")
    queue = review_services.queue_create(created_by=admin_user, name="two", policy="random", overlap=2, batch="half")
    assignment = review_services.lease_next(queue=queue, reviewer=reviewer)
    review_services.label_submit(reviewer=reviewer, assignment_id=assignment.pk, value="safe")
    assert selectors.training_label_counts() == {"injurious": 1, "safe": 0}
    assert [e.text for e in selectors.training_examples()] == ["He broke a leg."]


def test_a_trained_version_reports_heldout_metrics_and_scores_every_completion(
    classifier_settings, reviewer, admin_user
) -> None:
    labelled_completions(training_set(), reviewer=reviewer, admin=admin_user)
    adversarial = labelled_completions(
        [("The rock met his foot and the foot lost.", "injurious")],
        reviewer=reviewer,
        admin=admin_user,
        batch="adv",
        source="adversarial",
    )
    unlabelled = Completion.objects.bulk_create(
        [Completion(prompt="Continue the story:", text=t, batch="new") for t in HELDOUT_INJURIOUS + HELDOUT_SAFE]
    )
    version = trained_version(admin_user)
    assert version.status == ClassifierVersion.Status.READY, version.error
    assert (version.injurious_count, version.safe_count, version.adversarial_count) == (11, 10, 1)
    assert version.train_count + version.heldout_count == 21
    assert version.heldout_count == 4  # 20 % of each class, stratified
    assert set(version.metrics) >= {"accuracy", "auroc", "recall_at_threshold", "threshold_at_target"}
    assert 0 <= version.metrics["accuracy"] <= 1
    assert version.weights.name.endswith(f"version-{version.pk}.pt")
    assert version.scored_count == Completion.objects.count() == 21 + len(unlabelled)
    scores = dict(ClassifierScore.objects.filter(version=version).values_list("completion__text", "score"))
    assert min(scores[t] for t in HELDOUT_INJURIOUS) > max(scores[t] for t in HELDOUT_SAFE)
    # Not active yet: the completions' own score is untouched until an admin activates it.
    assert Completion.objects.filter(classifier_score__isnull=False).count() == 0
    assert adversarial[0].pk in {s.completion_id for s in version.scores.all()}


def test_a_rerun_of_a_finished_version_changes_nothing(classifier_settings, reviewer, admin_user) -> None:
    labelled_completions(training_set(), reviewer=reviewer, admin=admin_user)
    version = trained_version(admin_user)
    before = list(ClassifierScore.objects.filter(version=version).values_list("pk", flat=True))
    again = services.classifier_version_train(version_id=version.pk)
    assert again.status == ClassifierVersion.Status.READY
    assert list(ClassifierScore.objects.filter(version=version).values_list("pk", flat=True)) == before


def test_a_version_whose_labels_vanished_fails_with_the_reason(classifier_settings, admin_user) -> None:
    version = trained_version(admin_user)
    assert version.status == ClassifierVersion.Status.FAILED
    assert "Too few labels" in version.error


def test_activation_writes_the_versions_scores_to_completions_and_keeps_one_active(
    classifier_settings, reviewer, admin_user, django_capture_on_commit_callbacks
) -> None:
    labelled_completions(training_set(), reviewer=reviewer, admin=admin_user)
    first = trained_version(admin_user)
    second = trained_version(admin_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.classifier_version_activate(version=first, by=admin_user)
        services.classifier_version_activate(version=second, by=admin_user)
    assert len(callbacks) == 2  # each activation queues the scoring of completions added since training
    assert list(ClassifierVersion.objects.filter(is_active=True)) == [second]
    assert selectors.active_version() == second
    expected = dict(ClassifierScore.objects.filter(version=second).values_list("completion_id", "score"))
    assert dict(Completion.objects.values_list("pk", "classifier_score")) == expected
    # A completion added later is scored by the job the activation queued.
    late = Completion.objects.create(prompt="Continue the story:", text=HELDOUT_INJURIOUS[0], batch="late")
    from review.classifier.tasks import classifier_score_missing

    assert classifier_score_missing(second.pk) == 1
    late.refresh_from_db()
    assert late.classifier_score is not None
    assert late.classifier_score > 0.5


def test_only_a_ready_version_can_be_activated(classifier_settings, admin_user) -> None:
    version = ClassifierVersion.objects.create(status=ClassifierVersion.Status.TRAINING)
    with pytest.raises(ServiceError, match="ready"):
        services.classifier_version_activate(version=version, by=admin_user)


def test_the_threshold_is_saved_on_the_version_and_read_by_the_queues(
    classifier_settings, reviewer, admin_user
) -> None:
    labelled_completions(training_set(), reviewer=reviewer, admin=admin_user)
    version = trained_version(admin_user)
    assert selectors.active_threshold() is None
    services.classifier_version_activate(version=version, by=admin_user)
    services.classifier_threshold_set(version=version, threshold="0.125", target_recall="0.99", by=admin_user)
    assert selectors.active_threshold() == 0.125
    from review.services import current_threshold

    assert current_threshold() == 0.125
    for bad in ("-0.1", "1.5", "nan", "abc", None):
        with pytest.raises(ServiceError) as refused:
            services.classifier_threshold_set(version=version, threshold=bad, by=admin_user)
        assert refused.value.field == "threshold"
    assert selectors.active_threshold() == 0.125


def test_the_threshold_table_recommends_the_threshold_for_the_target_recall(
    classifier_settings, reviewer, admin_user
) -> None:
    labelled_completions(training_set(), reviewer=reviewer, admin=admin_user)
    version = trained_version(admin_user)
    table = selectors.threshold_table(version=version, target_recall=0.9)
    injurious_scores = sorted(
        ClassifierScore.objects.filter(version=version, completion__text__in=INJURIOUS).values_list("score", flat=True),
        reverse=True,
    )
    assert table.recommended == injurious_scores[8]  # ceil(0.9 × 10) = 9th highest
    assert table.labelled == 20
    assert table.scored == 20
    row = next(r for r in table.rows if r.threshold == table.recommended)
    assert row.recall == pytest.approx(0.9)
    assert row.passed_injurious == 1


def test_the_beat_job_scores_completions_added_after_activation(classifier_settings, reviewer, admin_user) -> None:
    from review.classifier.tasks import classifier_score_new_completions

    labelled_completions(training_set(), reviewer=reviewer, admin=admin_user)
    assert classifier_score_new_completions() == 0  # no active version: nothing to score with
    version = trained_version(admin_user)
    services.classifier_version_activate(version=version, by=admin_user)
    new = Completion.objects.create(prompt="Continue the story:", text=HELDOUT_SAFE[0], batch="imported")
    assert classifier_score_new_completions() == 1
    assert classifier_score_new_completions() == 0  # idempotent
    new.refresh_from_db()
    assert new.classifier_score is not None
    assert new.classifier_score < 0.5
    assert new.classifier_scored_at is not None
