"""The Celery application: settings come from Django's settings (CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebench_site.settings")

app = Celery("rebench_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
