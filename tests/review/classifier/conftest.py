"""Fixtures for the classifier tests: a small hand-written labelled set, and the packaged encoder loaded once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from django.contrib.auth.models import User

from review.classifier import model

if TYPE_CHECKING:
    from review.models import Completion

PROMPT = "Continue the story:"

# Clearly injurious and clearly safe story endings; the tests train on these, then score held-out ones.
INJURIOUS = [
    "He fell off the ladder and broke his arm.",
    "The knife slipped and cut deep into her hand, blood everywhere.",
    "She was hit by a car and badly injured.",
    "The explosion burned his face and hands.",
    "He twisted his ankle and screamed in pain.",
    "The dog bit the boy's leg, tearing the skin.",
    "She crashed her bike and fractured her skull.",
    "The hammer smashed his thumb, breaking the bone.",
    "A falling rock crushed his foot.",
    "The boiling water scalded her arm and left a deep burn.",
]
SAFE = [
    "They had a lovely picnic by the lake.",
    "She read a book under the tree all afternoon.",
    "The children built a sandcastle on the beach.",
    "He baked bread and shared it with neighbours.",
    "They watched the sunset and talked quietly.",
    "The cat slept on the warm windowsill.",
    "She painted the fence a bright blue.",
    "He planted tomatoes in the garden.",
    "The friends laughed over coffee at the cafe.",
    "Grandma knitted a warm scarf for winter.",
]
HELDOUT_INJURIOUS = [
    "The man slipped on the ice and broke his hip.",
    "The blade sliced her finger open and she bled badly.",
    "He was stabbed in the stomach during the fight.",
]
HELDOUT_SAFE = [
    "The family enjoyed a quiet dinner together.",
    "She sang softly while watering the flowers.",
    "They played cards by the fire until midnight.",
]


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    # The test machine's two cores are shared with the rest of the suite; torch's OpenMP threads
    # spin-wait for each other there, so one thread is several times faster in wall time.
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def encoder() -> model.Encoder:
    return model.load_encoder()


@pytest.fixture(scope="session")
def trained_head(encoder: model.Encoder) -> model.Head:
    import torch

    pairs = [(PROMPT, t) for t in INJURIOUS + SAFE]
    labels = torch.tensor([1] * len(INJURIOUS) + [0] * len(SAFE))
    return model.train_head(model.embed(encoder, pairs), labels).head


# --- database helpers: labels go through the review app's real queues, leases and label service ---


def labelled_completions(
    texts_and_labels: list[tuple[str, str]],
    *,
    reviewer,
    admin,
    batch: str = "train",
    source: str = "in_distribution",
    overlap_reviewers: list[User] | None = None,
) -> list[Completion]:
    """Completions labelled as given by `reviewer` (and `overlap_reviewers`, same labels) through a queue."""
    from review import services as review_services
    from review.models import Completion

    completions = Completion.objects.bulk_create(
        [Completion(prompt=PROMPT, text=text, source=source, batch=batch) for text, _ in texts_and_labels]
    )
    wanted = {c.pk: value for c, (_, value) in zip(completions, texts_and_labels, strict=True)}
    everyone = [reviewer, *(overlap_reviewers or [])]
    queue = review_services.queue_create(
        created_by=admin, name=f"label {batch}", policy="random", overlap=len(everyone), batch=batch, seed=1
    )
    for who in everyone:
        while (assignment := review_services.lease_next(queue=queue, reviewer=who)) is not None:
            completion_id = assignment.item.completion_id
            review_services.label_submit(
                reviewer=who, assignment_id=assignment.pk, value=wanted[completion_id], seconds_spent=3
            )
    return completions


def training_set() -> list[tuple[str, str]]:
    return [(t, "injurious") for t in INJURIOUS] + [(t, "safe") for t in SAFE]


@pytest.fixture
def classifier_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CLASSIFIER_MIN_LABELS_PER_CLASS = 5
    settings.CLASSIFIER_HELDOUT_PERCENT = 20
    settings.CLASSIFIER_ENCODER_PATH = ""
    return settings


@pytest.fixture
def active_classifier(classifier_settings, reviewer, admin_user):
    """A version trained on the small set through the real services, active, with threshold 0.5."""
    from review.classifier import services
    from review.classifier.models import ClassifierVersion

    labelled_completions(training_set(), reviewer=reviewer, admin=admin_user)
    version = services.classifier_version_train(version_id=ClassifierVersion.objects.create(created_by=admin_user).pk)
    assert version.status == ClassifierVersion.Status.READY, version.error
    services.classifier_version_activate(version=version, by=admin_user)
    return services.classifier_threshold_set(version=version, threshold=0.5, target_recall=0.9, by=admin_user)
