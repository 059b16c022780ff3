"""The agent's Celery app: `celery -A workstation.agent worker -Q <its queue>` on a workstation host."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebench_site.agent_settings")

app = Celery("rebench_workstation")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.include = ["workstation.agent.tasks"]
