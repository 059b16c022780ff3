"""Completions written by hand: the checks every completion's text and prompt pass, and red-team rewrites."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from rebench_site.errors import ServiceError
from review.models import Completion, ReviewQueue
from review.services._common import _items_add


def completion_check_text(text: Any, *, field: str = "text") -> str:
    """Refuse what can't be labelled: non-text, empty, or larger than REVIEW_MAX_COMPLETION_BYTES."""
    if not isinstance(text, str):
        raise ServiceError("must be a string", field=field)
    if not text.strip():
        raise ServiceError("is empty", field=field)
    size = len(text.encode("utf-8"))
    if size > settings.REVIEW_MAX_COMPLETION_BYTES:
        raise ServiceError(
            f"is {size:,} bytes; the limit is {settings.REVIEW_MAX_COMPLETION_BYTES:,} bytes", field=field
        )
    return text


def _check_prompt(prompt: Any) -> str:
    if not isinstance(prompt, str):
        raise ServiceError("must be a string", field="prompt")
    if len(prompt.encode("utf-8")) > settings.REVIEW_MAX_COMPLETION_BYTES:
        raise ServiceError(f"is longer than {settings.REVIEW_MAX_COMPLETION_BYTES:,} bytes", field="prompt")
    return prompt


@transaction.atomic
def completion_submit_rewrite(*, author: User, prompt: str, text: str, parent: Completion | None) -> Completion:
    """A red-team rewrite: a new `red_team` completion, put into every open verify queue.

    With no open verify queue a default one is made (all reviewers, REVIEW_VERIFY_OVERLAP labels),
    so a rewrite is never left where no one will see it.
    """
    completion = Completion.objects.create(
        prompt=_check_prompt(prompt),
        text=completion_check_text(text),
        source=Completion.Source.RED_TEAM,
        batch="red_team",
        parent=parent,
        created_by=author,
    )
    queues = list(ReviewQueue.objects.select_for_update().filter(policy=ReviewQueue.Policy.VERIFY, is_open=True))
    if not queues:
        queues = [
            ReviewQueue.objects.create(
                name="Verify red-team rewrites",
                policy=ReviewQueue.Policy.VERIFY,
                overlap=settings.REVIEW_VERIFY_OVERLAP,
                lease_seconds=settings.REVIEW_DEFAULT_LEASE_SECONDS,
                source_filter=Completion.Source.RED_TEAM,
                guideline="Is this rewrite injurious? Label what the text describes, not what it was meant to do.",
            )
        ]
    for queue in queues:
        _items_add(queue, [(completion.pk, time.time(), False)])
    return completion
