"""Logging that a client can't turn into a full disk.

Client mistakes (a 4xx, a malformed WebSocket frame, a refused socket) are worth a line, not a
traceback, and not a line each when one client sends thousands: per logger and message template,
at most CLIENT_LOG_BURST records per CLIENT_LOG_WINDOW_SECONDS pass; the rest are counted, and the
next record that passes says how many were dropped. Errors (a 5xx, an exception in our code) always
pass, traceback and all.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings

# Loggers whose warnings and below are about what clients send.
CLIENT_LOGGERS = ("django.request", "django.security", "trials.consumers", "rebench_site.client")


class ClientNoiseFilter(logging.Filter):
    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], tuple[float, int, int]] = {}  # key -> (start, passed, dropped)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR or not record.name.startswith(CLIENT_LOGGERS):
            return True
        # A refused request (403, 404, 400) is the client's doing: the traceback says nothing new.
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        key = (record.name, str(record.msg))
        now = time.monotonic()
        window, burst = settings.CLIENT_LOG_WINDOW_SECONDS, settings.CLIENT_LOG_BURST
        with self._lock:
            start, passed, dropped = self._windows.get(key, (now, 0, 0))
            if now - start >= window:
                start, passed = now, 0
            if passed >= burst:
                self._windows[key] = (start, passed, dropped + 1)
                return False
            self._windows[key] = (start, passed + 1, 0)
            if len(self._windows) > 10_000:  # many templates: forget the oldest windows
                for stale in sorted(self._windows, key=lambda k: self._windows[k][0])[:5_000]:
                    del self._windows[stale]
        if dropped:
            record.msg = f"{record.msg} [{dropped} similar messages dropped]"
        return True
