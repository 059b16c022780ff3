"""The database, the channel layer and Celery (broker, worker options, the beat schedule)."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from rebench_site.settings.core import DATA_DIR
from rebench_site.settings.env import env_bool, env_int, env_int_at_least, env_str

# Database: PostgreSQL via DATABASE_URL; embedded default is a SQLite file in DATA_DIR.
DATABASE_URL = env_str("DATABASE_URL")
DATABASES: dict[str, Any]
# With DB_POOL, PostgreSQL connections come from a pool in each process (psycopg_pool, through
# Django's OPTIONS["pool"]): under ASGI every request runs in a thread of its own, so without one
# each request opens a connection (about 9 ms) and closes it. The pool keeps MIN_SIZE open, opens up
# to MAX_SIZE under load, keeps what it opened idle for up to 10 minutes, and a request that finds
# all in use waits up to TIMEOUT seconds. A pooled connection goes back to the pool where Django
# would close it, so DB_CONN_MAX_AGE must stay 0.
# Off by default: every process then holds connections it isn't using, and the processes together
# must fit PostgreSQL's max_connections (100 by default). The test suite's parallel workers,
# whose races run 20 to 51 threads at once, each kept that many open after a race, and the workers
# together ran the server out of connections ("too many clients"). A deployment turns it on with
# DB_POOL_MAX_SIZE × its server processes within max_connections (docs/settings.md).
DB_POOL = env_bool("DB_POOL", False)
DB_POOL_MIN_SIZE = env_int_at_least("DB_POOL_MIN_SIZE", 2, 0)
DB_POOL_MAX_SIZE = env_int_at_least("DB_POOL_MAX_SIZE", 64, 1)
DB_POOL_TIMEOUT_SECONDS = env_int_at_least("DB_POOL_TIMEOUT_SECONDS", 30, 1)
DB_CONN_MAX_AGE = env_int("DB_CONN_MAX_AGE", 0)
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=DB_CONN_MAX_AGE)}
    if DB_POOL and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        if DB_CONN_MAX_AGE:
            raise ImproperlyConfigured(
                "DB_CONN_MAX_AGE must be 0 with DB_POOL (the pool keeps the connections); "
                "set DB_POOL=false to keep connections per thread instead"
            )
        if DB_POOL_MIN_SIZE > DB_POOL_MAX_SIZE:
            raise ImproperlyConfigured("DB_POOL_MIN_SIZE must not be above DB_POOL_MAX_SIZE")
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": DB_POOL_MIN_SIZE,
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": DB_POOL_TIMEOUT_SECONDS,
        }
else:
    DATABASES = {
        "default": {
            # Django's SQLite backend with writers queued at a gate before SQLite's lock, instead of
            # in its sleeping busy handler (rebench_site/sqlite3/base.py).
            "ENGINE": "rebench_site.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so booking transactions serialise
                # instead of failing with "database is locked" half-way through.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # A file (not :memory:) so that live-server and Celery worker threads share it; one
            # per process so that two test runs side by side never write the same file.
            "TEST": {"NAME": str(DATA_DIR / f"test-db-{os.getpid()}.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis (channels layer + Celery broker) when REDIS_URL is set; embedded defaults otherwise.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Caches: the default is each process's memory; API tokens (rebench_site/authentication.py) need
# one every process shares, so that a revocation anywhere clears it everywhere: Redis when set.
CACHES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "api-tokens": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # One pool per process, not one per request's thread (rebench_site/redis_pool.py).
            "OPTIONS": {"pool_class": "rebench_site.redis_pool.ProcessConnectionPool"},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "api-tokens"}
    ),
}

# Celery. The embedded broker is kombu's SQLAlchemy transport on a SQLite file: no server needed.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or f"sqla+sqlite:///{DATA_DIR / 'celery-broker.sqlite3'}"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Longer than the longest scoring run (600 s default) so a late-acked job is never redelivered mid-run.
# Only brokers with a visibility timeout (Redis, SQS) take it; the SQLAlchemy transport hands its
# options to create_engine, which refuses unknown ones.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 4 * 3600)}
    if CELERY_BROKER_URL.startswith(("redis", "rediss", "sqs"))
    else {}
)
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "attempts-sweep-deadlines": {
        "task": "trials.tasks.attempts_sweep_deadlines",
        "schedule": timedelta(seconds=env_int("ATTEMPT_SWEEP_SECONDS", 30)),
    },
    "workstations-ping": {
        "task": "trials.tasks.workstations_ping",
        "schedule": timedelta(seconds=env_int("WORKSTATION_PING_SECONDS", 30)),
    },
    # Pauses attempts on silent workstations, resumes them when their host is back, and renews
    # the sandboxes' leases; as often as heartbeats are asked for.
    "workstations-watch": {
        "task": "trials.tasks.workstations_watch",
        "schedule": timedelta(seconds=env_int("WORKSTATION_PING_SECONDS", 30)),
    },
}
