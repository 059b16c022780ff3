"""Numbers as people read them: working time as h:mm, scores to four significant digits.

Registered as a template builtin (settings.TEMPLATES), so every template has them without a load.
"""

from __future__ import annotations

import math
from typing import Any

from django import template

register = template.Library()


@register.filter
def duration_hm(seconds: Any) -> str:
    """Seconds of working time as h:mm ("28800" → "8:00", "103" → "0:01"); "—" for nothing.

    Whole minutes, truncated: a note written 59 s in was written in the first minute, not after it.
    """
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(value):
        return "—"
    sign = "−" if value < 0 else ""
    minutes = int(abs(value) // 60)
    return f"{sign}{minutes // 60}:{minutes % 60:02d}"


@register.filter
def duration_hms(seconds: Any) -> str:
    """Seconds as hh:mm:ss, the countdown's own format ("28800" → "08:00:00"); "—" for nothing.

    What the attempt bar shows before its script takes over the ticking, so the two never disagree.
    """
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(value):
        return "—"
    whole = int(max(0.0, value))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


@register.filter
def significant(value: Any, digits: int = 4) -> str:
    """A float to `digits` significant digits (1.8141730640649552 → "1.814"); the exact value belongs in a title."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—" if value is None else str(value)
    if not math.isfinite(number):
        return str(number)
    return f"{number:.{int(digits)}g}"
