"""One Redis connection pool per process and server, shared by every thread's cache client.

Django's cache handler keeps a cache object per thread, and its Redis client a pool per object.
Under ASGI every request runs in a thread of its own, so each request made a pool, opened a TCP
connection (resolving the host again) and dropped it: about a fifth of an API request's CPU when
the token cache answered. The pool here is made once per URL and options and reused; redis-py's
pool is thread-safe and opens fresh connections in a forked child (it checks the pid).
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import redis


class ProcessConnectionPool(redis.ConnectionPool):
    _shared: ClassVar[dict[str, ProcessConnectionPool]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Any:
        key = repr((url, sorted(kwargs.items())))
        with cls._shared_lock:
            pool = cls._shared.get(key)
            if pool is None:
                pool = cls._shared[key] = super().from_url(url, **kwargs)
            return pool
