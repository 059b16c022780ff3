"""Settings of a workstation host's agent: the site's own (paths, sandbox, grading), with no database and no secret.

DJANGO_SETTINGS_MODULE=rebench_site.agent_settings, with WORKSTATION_SITE_URL (the site's address),
WORKSTATION_AGENT_TOKEN (this workstation's token) and CELERY_BROKER_URL (its broker login).
DATABASES is empty, so any use of the ORM here fails at once (ImproperlyConfigured) rather than
reaching a database; the set-up script writes no DATABASE_URL, SECRET_KEY or REDIS_URL for it.
"""

import os
import secrets

# The site's key signs sessions and reset links; the agent signs nothing, so it runs on a key of its
# own, made per process, and the workstation never holds the site's.
os.environ["SECRET_KEY"] = secrets.token_urlsafe(64)

# Star import on purpose: the site's settings, every one, then the agent's changes below.
from rebench_site.settings import *  # noqa: F403

DATABASES = {}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
WORKSTATION_SITE = "workstation.agent.site.HttpSite"
# The agent never publishes to the broker (its answers go to the site over HTTPS), takes no remote
# control and sends no events: its broker login needs its own queue and nothing else.
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_BEAT_SCHEDULE = {}
