"""Celery tasks for grading on the site's own worker; those on a workstation's queue are workstation.agent.tasks."""

from __future__ import annotations

from celery import shared_task

from graders import services


@shared_task(acks_late=True)
def scoring_jobs_recover() -> dict[str, str]:
    """Periodic: jobs whose worker went silent are run again or closed (see services.scoring_jobs_recover)."""
    return services.scoring_jobs_recover()
