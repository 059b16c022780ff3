"""A real Celery worker inside the test process, on Redis (REDIS_URL) or on the embedded SQLAlchemy broker."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery, signals
from celery.contrib.testing.worker import start_worker
from celery.worker import WorkController
from kombu.asynchronous import set_event_loop

from rebench_site.celery import app as celery_app
from tests import parallel

# A Redis database of its own, flushed before and after each test: messages left by other runs
# (or by tests that queue tasks without a worker) never reach these workers. Test runs side by side
# on one Redis each set their own (REBENCH_TEST_REDIS_DB).
TEST_REDIS_DB = int(os.environ.get("REBENCH_TEST_REDIS_DB", parallel.CELERY_TEST_REDIS_DB))

# Both brokers in one run where the machine has Redis; the SQLAlchemy one everywhere.
BROKERS = [
    pytest.param("sqla", id="sqla-broker"),
    pytest.param("redis", id="redis-broker", marks=pytest.mark.redis),
]


def redis_test_url() -> str:
    return parallel.with_redis_db(os.environ["REDIS_URL"], TEST_REDIS_DB)


def broker_url(kind: str, tmp_path: Path) -> str:
    if kind == "redis":
        return redis_test_url()
    return f"sqla+sqlite:///{tmp_path / 'celery-broker.sqlite3'}"


def _drop_broker_connections(app: Celery) -> None:
    """Forget the app's connection and producer pools, so the next message goes to the broker configured now.

    `Celery.close()` is not enough: it keeps the producer pool, bound to the old broker. The pools
    themselves stay open in kombu's registry (keyed by broker URL), ready for the next test on that URL.
    """
    app._pool = None  # type: ignore[attr-defined]  # Celery's private connection pool
    app.amqp._producer_pool = None  # type: ignore[attr-defined]  # and its private producer pool


def _flush_redis(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def transport_options(url: str) -> dict[str, int]:
    """As the settings (rebench_site/settings/infrastructure.py) have them: only Redis takes a visibility timeout.

    The SQLAlchemy transport hands every option to `create_engine`, which refuses unknown ones.
    """
    if url.startswith("redis"):
        return {"visibility_timeout": 4 * 3600}
    return {}


@contextmanager
def using_broker(url: str) -> Iterator[Celery]:
    """Point the project's Celery app at `url`, with tasks really sent (never eager); restore it after."""
    # With the CELERY_ namespace the app looks up CELERY_BROKER_URL before broker_url, so the
    # override goes in under the prefixed names, into the app's own changes over Django's settings.
    overrides = {
        "CELERY_BROKER_URL": url,
        "CELERY_TASK_ALWAYS_EAGER": False,
        "CELERY_BROKER_TRANSPORT_OPTIONS": transport_options(url),
    }
    changes = celery_app.conf.changes
    assert changes is not None
    saved = {key: changes[key] for key in overrides if key in changes}
    if url.startswith("redis"):
        _flush_redis(url)
    _drop_broker_connections(celery_app)
    changes.update(overrides)
    try:
        assert celery_app.conf.broker_url == url
        assert not celery_app.conf.task_always_eager
        yield celery_app
    finally:
        _drop_broker_connections(celery_app)
        for key in overrides:
            changes.pop(key, None)
        changes.update(saved)
        if url.startswith("redis"):
            _flush_redis(url)


def _leave_logging_alone(**kwargs: Any) -> None:
    """A `setup_logging` receiver: while one is connected Celery keeps its hands off the root logger."""


@contextmanager
def running_worker(app: Celery, queues: list[str]) -> Iterator[WorkController]:
    """A worker thread (solo pool) consuming only `queues`; stopped, and its queue selection undone, on exit."""
    # Fail here, not in the worker thread, if the broker can't be used: start_worker would wait
    # for a worker that never comes up.
    for queue in queues:
        queue_length(app, queue)
    selection = app.amqp.queues._consume_from  # type: ignore[attr-defined]  # what a worker consumes, restored after
    signals.setup_logging.connect(_leave_logging_alone)
    # A worker reuses kombu's process-wide event loop if one is set, with the timer of the worker
    # that made it: eta tasks of a second worker in the same process would then never fire.
    set_event_loop(None)
    try:
        with start_worker(
            app, pool="solo", queues=queues, perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30
        ) as worker:
            yield worker
    finally:
        signals.setup_logging.disconnect(_leave_logging_alone)
        set_event_loop(None)
        app.amqp.queues._consume_from = selection  # type: ignore[attr-defined]  # (see above)


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05) -> bool:
    """Poll until `predicate()` is true; False if it never was within `timeout` seconds."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def queue_length(app: Celery, queue: str) -> int:
    """Messages in `queue`, asked of the broker itself (declaring the queue if it is new).

    Redis counts the messages still waiting; the SQLAlchemy transport also counts the ones it has
    delivered, which it marks invisible but never deletes.
    """
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        return channel.queue_declare(queue=queue).message_count  # type: ignore[attr-defined]  # every transport's channel has it
