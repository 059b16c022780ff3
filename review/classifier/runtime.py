"""Per-process caches of the encoder and of trained heads, keyed by version, read from storage once;
and the warm-up that fills them (review.classifier.warm runs it when a web server starts)."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings

from review.classifier import model
from review.classifier.models import ClassifierVersion

logger = logging.getLogger(__name__)

_HEADS: dict[tuple[int, str], model.Head] = {}
_HEADS_LOCK = threading.Lock()


def encoder(path: str | None = None, max_length: int | None = None) -> model.Encoder:
    """The configured encoder (or the one a version was trained with), loaded once per process."""
    return model.load_encoder(
        settings.CLASSIFIER_ENCODER_PATH if path is None else path,
        max_length=max_length or settings.CLASSIFIER_MAX_LENGTH,
        threads=settings.CLASSIFIER_TORCH_THREADS,
    )


def encoder_for(version: ClassifierVersion) -> model.Encoder:
    return encoder(version.encoder_path, version.max_length)


def head_for(version: ClassifierVersion) -> model.Head:
    """The version's trained head; raises ValueError when it has no weights yet."""
    if not version.weights:
        raise ValueError(f"{version} has no trained weights")
    key = (version.pk, version.weights.name)
    with _HEADS_LOCK:
        if key not in _HEADS:
            with version.weights.open("rb") as handle:
                head, _meta = model.head_from_bytes(handle.read())
            _HEADS[key] = head
        return _HEADS[key]


def is_warm(version: ClassifierVersion) -> bool:
    """Whether scoring with `version` in this process would load nothing."""
    key = (version.encoder_path or model.packaged_encoder_path(), version.max_length or settings.CLASSIFIER_MAX_LENGTH)
    return key in model._ENCODERS and (version.pk, version.weights.name) in _HEADS


# --- warm-up ---------------------------------------------------------------------------------------


def warm_up() -> ClassifierVersion | None:
    """Load the encoder and the active version's head, and run one scoring with gradients through them.

    The first forward and backward passes allocate and pick kernels (a second or more on CPU), so
    one is made here too. Returns the version it warmed (None when none is active: the encoder alone).
    """
    started = time.monotonic()
    version = (
        ClassifierVersion.objects.filter(is_active=True, status=ClassifierVersion.Status.READY)
        .exclude(weights="")
        .first()
    )
    if version is None:
        model.embed(encoder(), [("warm-up", "warm-up")])
    else:
        model.explain(encoder_for(version), head_for(version), "warm-up", "warm-up")
    logger.info("classifier warm in %.1f s (%s)", time.monotonic() - started, version or "encoder only")
    return version
