"""A client that sends thousands of bad requests or frames gets a few log lines, not thousands of tracebacks."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_thousand_forbidden_requests_log_a_bounded_number_of_lines_without_tracebacks(
    expert: Any, settings: Any
) -> None:
    from rebench_site.log_filters import ClientNoiseFilter

    settings.CLIENT_LOG_BURST = 5
    # The site's own console handler (settings.LOGGING), written to a buffer for the test.
    console = next(h for h in logging.getLogger().handlers if any(isinstance(f, ClientNoiseFilter) for f in h.filters))
    for noise in console.filters:
        if isinstance(noise, ClientNoiseFilter):
            noise._windows.clear()  # the 403s of earlier tests in this process, within the same window
    assert isinstance(console, logging.StreamHandler)
    buffer = io.StringIO()
    stream = console.setStream(buffer)
    try:
        client = Client()
        client.force_login(expert)
        for _ in range(1000):
            assert client.get("/schedule/").status_code == 403  # admins only
    finally:
        console.setStream(stream)
    written = buffer.getvalue()
    forbidden = [line for line in written.splitlines() if "Forbidden" in line]
    assert len(forbidden) == 5
    assert "Traceback" not in written


def test_after_the_window_the_next_line_says_how_many_were_dropped(settings: Any) -> None:
    from rebench_site.log_filters import ClientNoiseFilter

    settings.CLIENT_LOG_BURST = 2
    settings.CLIENT_LOG_WINDOW_SECONDS = 0
    noise = ClientNoiseFilter()

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("trials.consumers", logging.WARNING, __file__, 1, msg, (), None)

    settings.CLIENT_LOG_WINDOW_SECONDS = 3600
    passed = [noise.filter(record("bad frame from %s")) for _ in range(10)]
    assert passed == [True, True] + [False] * 8
    settings.CLIENT_LOG_WINDOW_SECONDS = 0  # the window has passed
    late = record("bad frame from %s")
    assert noise.filter(late)
    assert late.msg == "bad frame from %s [8 similar messages dropped]"


def test_errors_of_our_own_always_pass_with_their_traceback(settings: Any) -> None:
    from rebench_site.log_filters import ClientNoiseFilter

    settings.CLIENT_LOG_BURST = 0
    noise = ClientNoiseFilter()
    try:
        raise RuntimeError("ours")
    except RuntimeError:
        import sys

        error = logging.LogRecord(
            "django.request", logging.ERROR, __file__, 1, "Internal Server Error", (), sys.exc_info()
        )
    assert noise.filter(error)
    assert error.exc_info is not None
