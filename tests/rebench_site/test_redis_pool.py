"""The token cache's Redis connections: one pool per process, whichever thread (request) asks."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.cache import caches

from rebench_site import authentication
from rebench_site.redis_pool import ProcessConnectionPool

pytestmark = pytest.mark.redis


def in_a_new_thread() -> tuple[Any, Any]:
    """What a request's thread gets: its own cache object, and the pool that object's client uses."""
    got: list[tuple[Any, Any]] = []

    def run() -> None:
        cache = caches[authentication.CACHE_ALIAS]
        cache.get("any-key")
        client = cache._cache.get_client()  # type: ignore[attr-defined]  # its redis client (not in the stubs)
        got.append((cache, client.connection_pool))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    return got[0]


def test_requests_in_threads_of_their_own_share_one_pool_and_its_connection() -> None:
    first_cache, first_pool = in_a_new_thread()
    second_cache, second_pool = in_a_new_thread()
    assert first_cache is not second_cache  # Django's handler: a cache object per thread
    assert isinstance(first_pool, ProcessConnectionPool)
    assert first_pool is second_pool
    for _ in range(20):
        in_a_new_thread()
    # Twenty-two requests, one at a time: one connection made, and back in the pool.
    assert first_pool._created_connections == 1
    assert len(first_pool._available_connections) == 1


def test_a_pool_is_per_server_and_options() -> None:
    a = ProcessConnectionPool.from_url("redis://127.0.0.1:6379/1")
    assert ProcessConnectionPool.from_url("redis://127.0.0.1:6379/1") is a
    assert ProcessConnectionPool.from_url("redis://127.0.0.1:6379/2") is not a
    assert ProcessConnectionPool.from_url("redis://127.0.0.1:6379/1", socket_timeout=5) is not a
