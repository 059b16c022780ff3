"""The training job through a real Celery worker: request → train → held-out metrics → every completion scored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from review.classifier import services
from review.classifier.models import ClassifierScore, ClassifierVersion
from review.models import Completion
from tests.review.classifier.conftest import labelled_completions, training_set
from tests.trials.celery_support import BROKERS, broker_url, running_worker, using_broker, wait_for

# The worker thread has its own database connection: it only sees committed rows.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]


@pytest.fixture(params=BROKERS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Celery]:
    with using_broker(broker_url(request.param, tmp_path)) as app:
        yield app


def status_of(version: ClassifierVersion) -> str:
    return ClassifierVersion.objects.values_list("status", flat=True).get(pk=version.pk)


def test_a_real_worker_trains_a_version_and_scores_every_completion(
    app: Celery, classifier_settings, reviewer, admin_user
) -> None:
    labelled_completions(training_set(), reviewer=reviewer, admin=admin_user)
    Completion.objects.create(prompt="Continue the story:", text="Nobody has labelled this one yet.", batch="new")
    with running_worker(app, queues=[classifier_settings.CLASSIFIER_QUEUE]):
        version = services.classifier_version_request(by=admin_user)
        assert wait_for(
            lambda: status_of(version) in {ClassifierVersion.Status.READY, ClassifierVersion.Status.FAILED},
            timeout=180,
        )
    version.refresh_from_db()
    assert version.status == ClassifierVersion.Status.READY, version.error
    assert version.metrics["auroc"] is not None
    assert version.heldout_count == 4
    assert version.scored_count == 21
    assert ClassifierScore.objects.filter(version=version).count() == 21
    assert version.weights.storage.exists(version.weights.name)
