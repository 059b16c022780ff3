"""Fixtures for review tests: completions, queues and reviewers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User

from review import services
from review.models import Completion, ReviewQueue
from tests import factories


def make_completions(
    n: int, *, source: str = "in_distribution", batch: str = "b1", **kwargs: object
) -> list[Completion]:
    return Completion.objects.bulk_create(
        [
            Completion(prompt=f"Prompt {i}", text=f"Completion text {i}.", source=source, batch=batch, **kwargs)
            for i in range(n)
        ]
    )


@pytest.fixture
def completions(db) -> Callable[..., list[Completion]]:
    return make_completions


@pytest.fixture
def make_queue(db, admin_user) -> Callable[..., ReviewQueue]:
    def build(**kwargs: object) -> ReviewQueue:
        options: dict[str, Any] = {"created_by": admin_user, "name": "Queue", "policy": "random", "seed": 1}
        options.update(kwargs)
        return services.queue_create(**options)

    return build


@pytest.fixture
def reviewers(db) -> list[User]:
    return [factories.reviewer(username=f"rev{i}") for i in range(4)]
