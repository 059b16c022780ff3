"""Writes for the classifier: training versions, rescoring, activation, the threshold, red-team attempts."""

from __future__ import annotations

import logging
import math
import random
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from audit.services import audit_record
from rebench_site.errors import ServiceError
from review.classifier import selectors, thresholds
from review.classifier.models import ClassifierScore, ClassifierVersion, RedTeamAttempt
from review.models import Completion
from review.services import completion_check_text, completion_submit_rewrite

if TYPE_CHECKING:
    from review.classifier import model

logger = logging.getLogger(__name__)

SPLIT_SEED = 20221103  # the held-out split is the same for every run over the same labels


# --- training --------------------------------------------------------------------------------


def classifier_training_check(counts: dict[str, int] | None = None) -> dict[str, int]:
    """Refuse training until each class has CLASSIFIER_MIN_LABELS_PER_CLASS consensus labels."""
    counts = counts if counts is not None else selectors.training_label_counts()
    needed = settings.CLASSIFIER_MIN_LABELS_PER_CLASS
    missing = {label: needed - n for label, n in counts.items() if n < needed}
    if missing:
        have = ", ".join(f"{n} {label}" for label, n in counts.items())
        more = " and ".join(f"{n} more {label}" for label, n in missing.items())
        raise ServiceError(
            f"Too few labels to train: {have}; each class needs {needed}, so {more} consensus labels are needed.",
            field="labels",
            code="too_few_labels",
        )
    return counts


@transaction.atomic
def classifier_version_request(*, by: User | None) -> ClassifierVersion:
    """Queue the training of a new version (refused with too few labels); the job starts after commit."""
    counts = classifier_training_check()
    busy = [ClassifierVersion.Status.QUEUED, ClassifierVersion.Status.TRAINING, ClassifierVersion.Status.SCORING]
    if ClassifierVersion.objects.filter(status__in=busy).exists():
        raise ServiceError("A version is already being trained; wait for it to finish.", field="labels")
    version = ClassifierVersion.objects.create(
        created_by=by,
        encoder_path=settings.CLASSIFIER_ENCODER_PATH,
        max_length=settings.CLASSIFIER_MAX_LENGTH,
        injurious_count=counts["injurious"],
        safe_count=counts["safe"],
    )
    from review.classifier.tasks import classifier_train

    transaction.on_commit(lambda: classifier_train.apply_async(args=(version.pk,), queue=settings.CLASSIFIER_QUEUE))
    return version


def _split(examples: list[selectors.Example], percent: int) -> tuple[list[selectors.Example], list[selectors.Example]]:
    """Stratified by class: `percent` of each class held out, at least one of each when it has two."""
    rng = random.Random(SPLIT_SEED)  # noqa: S311 - a reproducible split, not a secret
    train: list[selectors.Example] = []
    heldout: list[selectors.Example] = []
    for injurious in (True, False):
        group = [e for e in examples if e.injurious is injurious]
        rng.shuffle(group)
        k = min(len(group) - 1, max(1, round(len(group) * percent / 100))) if len(group) > 1 else 0
        heldout += group[:k]
        train += group[k:]
    return train, heldout


def _pairs(examples: list[selectors.Example]) -> list[model.Pair]:
    return [(e.prompt, e.text) for e in examples]


def classifier_version_train(*, version_id: int) -> ClassifierVersion:
    """Train, evaluate on held-out labels, store the head, and score every completion with it.

    Runs in the Celery job. Not one transaction (it takes minutes): each step commits its state,
    and a rerun of a version that is already ready does nothing.
    """
    import torch

    from review.classifier import model, runtime

    version = ClassifierVersion.objects.get(pk=version_id)
    if version.status in {ClassifierVersion.Status.READY, ClassifierVersion.Status.FAILED}:
        return version
    try:
        examples = selectors.training_examples()
        counts = {
            "injurious": sum(e.injurious for e in examples),
            "safe": sum(not e.injurious for e in examples),
        }
        classifier_training_check(counts)
        ClassifierVersion.objects.filter(pk=version.pk).update(status=ClassifierVersion.Status.TRAINING)
        encoder = runtime.encoder(version.encoder_path, version.max_length)
        train, heldout = _split(examples, settings.CLASSIFIER_HELDOUT_PERCENT)
        batch = settings.CLASSIFIER_BATCH_SIZE
        result = model.train_head(
            model.embed(encoder, _pairs(train), batch_size=batch),
            torch.tensor([int(e.injurious) for e in train]),
            epochs=settings.CLASSIFIER_TRAIN_EPOCHS,
        )
        heldout_scores = model.score_pairs(encoder, result.head, _pairs(heldout), batch_size=batch)
        metrics: dict[str, Any] = thresholds.heldout_metrics(heldout_scores, [e.injurious for e in heldout])
        metrics["train_loss"] = result.final_loss
        weights = model.head_to_bytes(result.head, encoder_path=encoder.path, max_length=encoder.max_length)
        version.weights.save(f"version-{version.pk}.pt", ContentFile(weights), save=False)
        version.train_count = len(train)
        version.heldout_count = len(heldout)
        version.injurious_count = counts["injurious"]
        version.safe_count = counts["safe"]
        version.adversarial_count = sum(e.adversarial for e in examples)
        version.metrics = {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}
        version.status = ClassifierVersion.Status.SCORING
        version.save()
        version.scored_count = classifier_version_rescore(version=version, head=result.head)
        version.status = ClassifierVersion.Status.READY
        version.finished_at = timezone.now()
        version.save(update_fields=["scored_count", "status", "finished_at"])
    except Exception as exc:
        logger.exception("training %s failed", version)
        message = exc.message if isinstance(exc, ServiceError) else f"{type(exc).__name__}: {exc}"
        ClassifierVersion.objects.filter(pk=version.pk).update(
            status=ClassifierVersion.Status.FAILED, error=message, finished_at=timezone.now()
        )
        version.refresh_from_db()
    return version


def classifier_version_rescore(
    *, version: ClassifierVersion, head: model.Head | None = None, only_missing: bool = False
) -> int:
    """Score completions with `version` in batches (one transaction per batch); returns how many were scored.

    The active version's scores are also written to Completion.classifier_score.
    """
    from review.classifier import model, runtime

    head = head or runtime.head_for(version)
    encoder = runtime.encoder_for(version)
    batch_size = settings.CLASSIFIER_BATCH_SIZE
    completions = Completion.objects.order_by("pk")
    if only_missing:
        completions = completions.exclude(classifier_scores__version=version)
    done = 0
    last_pk = 0
    while True:
        chunk = list(completions.filter(pk__gt=last_pk).values_list("pk", "prompt", "text")[: batch_size * 8])
        if not chunk:
            return done
        scores = model.score_pairs(encoder, head, [(p, t) for _, p, t in chunk], batch_size=batch_size)
        _store_scores(version, [(pk, s) for (pk, _, _), s in zip(chunk, scores, strict=True)])
        done += len(chunk)
        last_pk = chunk[-1][0]


@transaction.atomic
def _store_scores(version: ClassifierVersion, scored: list[tuple[int, float]]) -> None:
    ids = [pk for pk, _ in scored]
    ClassifierScore.objects.filter(version=version, completion_id__in=ids).delete()
    ClassifierScore.objects.bulk_create(
        [ClassifierScore(version=version, completion_id=pk, score=score) for pk, score in scored]
    )
    if ClassifierVersion.objects.filter(pk=version.pk, is_active=True).exists():
        now = timezone.now()
        Completion.objects.bulk_update(
            [Completion(pk=pk, classifier_score=score, classifier_scored_at=now) for pk, score in scored],
            ["classifier_score", "classifier_scored_at"],
        )


@transaction.atomic
def classifier_version_activate(*, version: ClassifierVersion, by: User | None) -> ClassifierVersion:
    """Make `version` the one in use: its scores become every completion's classifier_score.

    Completions added since it was trained are scored after commit by a job.
    """
    version = ClassifierVersion.objects.select_for_update().get(pk=version.pk)
    if version.status != ClassifierVersion.Status.READY:
        raise ServiceError(f"Only a ready version can be activated; this one is {version.status}.", field="version")
    previous = ClassifierVersion.objects.filter(is_active=True).exclude(pk=version.pk).first()
    audit_record(
        actor=by,
        action="classifier.activate",
        subject=f"classifier version {version.pk}",
        before={"active": previous.pk if previous else None},
        after={"active": version.pk},
    )
    ClassifierVersion.objects.filter(is_active=True).exclude(pk=version.pk).update(is_active=False)
    version.is_active = True
    version.activated_at = timezone.now()
    version.save(update_fields=["is_active", "activated_at"])
    score = ClassifierScore.objects.filter(version=version, completion=OuterRef("pk")).values("score")[:1]
    Completion.objects.update(classifier_score=Subquery(score), classifier_scored_at=version.activated_at)
    Completion.objects.filter(classifier_score__isnull=True).update(classifier_scored_at=None)
    from review.classifier.tasks import classifier_score_missing

    transaction.on_commit(
        lambda: classifier_score_missing.apply_async(args=(version.pk,), queue=settings.CLASSIFIER_QUEUE)
    )
    return version


@transaction.atomic
def classifier_threshold_set(
    *, version: ClassifierVersion, threshold: Any, target_recall: Any = None, by: User | None
) -> ClassifierVersion:
    """Save the threshold completions are filtered at (score ≥ threshold) for `version`."""
    value = _unit_float(threshold, field="threshold")
    recall = None if target_recall in (None, "") else _unit_float(target_recall, field="target_recall")
    version = ClassifierVersion.objects.select_for_update().get(pk=version.pk)
    if version.status != ClassifierVersion.Status.READY:
        raise ServiceError("Only a ready version takes a threshold.", field="version")
    audit_record(
        actor=by,
        action="classifier.threshold",
        subject=f"classifier version {version.pk}",
        before={"threshold": version.threshold, "target_recall": version.threshold_target_recall},
        after={"threshold": value, "target_recall": recall},
    )
    version.threshold = value
    version.threshold_target_recall = recall
    version.threshold_set_at = timezone.now()
    version.threshold_set_by = by
    version.save(update_fields=["threshold", "threshold_target_recall", "threshold_set_at", "threshold_set_by"])
    return version


def _unit_float(raw: Any, *, field: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ServiceError("must be a number between 0 and 1", field=field) from None
    if not 0 <= value <= 1 or math.isnan(value):
        raise ServiceError("must be between 0 and 1", field=field)
    return value


# --- red team --------------------------------------------------------------------------------


def _require_scoring_version() -> ClassifierVersion:
    version = selectors.active_version()
    if version is None:
        raise ServiceError("No classifier version is active yet: an admin trains and activates one first.")
    return version


@transaction.atomic
def red_team_attempt_start(
    *,
    reviewer: User,
    prompt: Any = None,
    text: Any = "",
    completion: Completion | None = None,
    now: datetime | None = None,
) -> RedTeamAttempt:
    """Begin an attack from a prompt (and optionally a completion, or text to start from)."""
    from review.classifier import model, runtime

    version = _require_scoring_version()
    if completion is not None:
        prompt, text = completion.prompt, completion.text
    if not isinstance(prompt, str) or not prompt.strip():
        raise ServiceError("is empty: start from a prompt", field="prompt")
    text = "" if text is None else text
    if text:
        completion_check_text(text)
    start_score = None
    if text.strip():
        start_score = model.score_pairs(runtime.encoder_for(version), runtime.head_for(version), [(prompt, text)])[0]
    return RedTeamAttempt.objects.create(
        reviewer=reviewer,
        prompt=prompt,
        start_completion=completion,
        start_text=text,
        start_score=start_score,
        version=version,
        threshold=version.threshold,
        started_at=now or timezone.now(),
    )


@transaction.atomic
def red_team_attempt_submit(
    *, attempt: RedTeamAttempt, reviewer: User, text: Any, now: datetime | None = None
) -> RedTeamAttempt:
    """Send a rewrite the classifier passes (score below the threshold) to the verify queue."""
    from review.classifier import model, runtime

    attempt = RedTeamAttempt.objects.select_for_update().get(pk=attempt.pk)
    if attempt.reviewer_id != reviewer.pk:
        raise ServiceError("This attempt belongs to another reviewer.", field="attempt")
    if attempt.submitted_at is not None:
        raise ServiceError("This attempt was already submitted.", field="attempt")
    text = completion_check_text(text)
    version = _require_scoring_version()
    if version.threshold is None:
        raise ServiceError("The active classifier has no threshold yet: an admin sets one first.", field="text")
    score = model.score_pairs(runtime.encoder_for(version), runtime.head_for(version), [(attempt.prompt, text)])[0]
    if score >= version.threshold:
        raise ServiceError(
            f"scores {score:.4f}, at or above the threshold {version.threshold:.4f}: the classifier still filters it",
            field="text",
        )
    rewrite = completion_submit_rewrite(
        author=reviewer, prompt=attempt.prompt, text=text, parent=attempt.start_completion
    )
    ClassifierScore.objects.create(version=version, completion=rewrite, score=score)
    Completion.objects.filter(pk=rewrite.pk).update(classifier_score=score, classifier_scored_at=timezone.now())
    attempt.final_text = text
    attempt.final_score = score
    attempt.version = version
    attempt.threshold = version.threshold
    attempt.submitted_at = now or timezone.now()
    attempt.rewrite = rewrite
    attempt.save()
    return attempt
