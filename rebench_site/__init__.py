"""rebench_site: human expert trials, grading and review for RE-Bench."""

from .celery import app as celery_app

__all__ = ["celery_app"]
