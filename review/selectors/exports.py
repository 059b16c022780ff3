"""Exports: a queue's labels as JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.contrib.auth import get_user_model

from review.models import Label, ReviewQueue


def labels_export_lines(*, queue: ReviewQueue) -> Iterator[str]:
    """One JSON object per label (streamed): the completion, who labelled it, how and how fast."""
    username = get_user_model().USERNAME_FIELD
    rows = (
        Label.objects.filter(queue=queue)
        .order_by("id")
        .values_list(
            "id",
            "completion_id",
            "completion__external_id",
            "completion__source",
            "completion__batch",
            "item__is_gold",
            f"reviewer__{username}",
            "value",
            "note",
            "seconds_spent",
            "created_at",
        )
    )
    for row in rows.iterator(chunk_size=2000):
        (lid, cid, ext, source, batch, gold, who, value, note, seconds, created) = row
        yield (
            json.dumps(
                {
                    "label_id": lid,
                    "queue_id": queue.pk,
                    "completion_id": cid,
                    "external_id": ext,
                    "source": source,
                    "batch": batch,
                    "is_gold": gold,
                    "reviewer": who,
                    "label": value,
                    "note": note,
                    "seconds_spent": round(seconds, 3),
                    "created_at": created.isoformat(),
                },
                ensure_ascii=False,
            )
            + "\n"
        )
