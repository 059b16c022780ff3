"""Celery tasks for leaderboards: thin wrappers over the services (Celery's autodiscovery finds them)."""

from __future__ import annotations

from celery import shared_task

from graders.leaderboards import services


@shared_task(name="graders.leaderboards.recompute_due", acks_late=True)
def leaderboard_recompute_due() -> str:
    """Debounced: re-queues itself until the burst of score changes is quiet, then recomputes once."""
    return services.leaderboard_recompute_due()
