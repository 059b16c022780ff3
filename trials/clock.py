"""The attempt clock as pure functions: elapsed = now − started − paused, and when it runs out.

Pauses may overlap (an admin's after-the-fact `technical` pause over an expert's break), so
paused time is the length of the union of the pause intervals, never their sum.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime | None  # None: still open


def merge(spans: Iterable[Span]) -> list[Span]:
    """Sorted union of spans; an open span swallows everything after its start."""
    ordered = sorted(spans, key=lambda s: s.start)
    merged: list[Span] = []
    for span in ordered:
        if span.end is not None and span.end <= span.start:
            continue
        if merged:
            last = merged[-1]
            if last.end is None:
                break
            if span.start <= last.end:
                end = None if span.end is None else max(last.end, span.end)
                merged[-1] = Span(last.start, end)
                continue
        merged.append(span)
    return merged


def paused_between(spans: Iterable[Span], start: datetime, until: datetime) -> timedelta:
    total = timedelta(0)
    for span in merge(spans):
        lo = max(span.start, start)
        hi = until if span.end is None else min(span.end, until)
        if hi > lo:
            total += hi - lo
    return total


def elapsed(started_at: datetime, pauses: Iterable[Span], now: datetime, ended_at: datetime | None = None) -> timedelta:
    """Working time on the clock at `now` (frozen at `ended_at` once the attempt has ended)."""
    until = now if ended_at is None else min(now, ended_at)
    if until <= started_at:
        return timedelta(0)
    return (until - started_at) - paused_between(pauses, started_at, until)


def deadline(started_at: datetime, time_limit: timedelta, pauses: Iterable[Span]) -> datetime | None:
    """The wall-clock moment the working time reaches `time_limit`, given the pauses known so far.

    None when an open pause stops the clock before the limit is reached (the deadline is
    decided when the pause ends).
    """
    cursor = started_at
    remaining = time_limit
    for span in merge(pauses):
        if span.end is not None and span.end <= cursor:
            continue
        span_start = max(span.start, cursor)
        active = span_start - cursor
        if active >= remaining:
            return cursor + remaining
        remaining -= active
        if span.end is None:
            return None
        cursor = span.end
    return cursor + remaining
