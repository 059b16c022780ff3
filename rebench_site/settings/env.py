"""Typed readers of environment variables: every setting is one, with a working default.

Each helper's first argument is the variable's name (tests/rebench_site/test_docs.py reads them so).
"""

from __future__ import annotations

import json
import os
from typing import Any

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_int_at_least(name: str, default: int, minimum: int) -> int:
    value = env_int(name, default)
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


def env_proxy_ssl_header(name: str, default: str) -> tuple[str, str] | None:
    """ "Header,value" (X-Forwarded-Proto,https or HTTP_X_FORWARDED_PROTO,https); empty or "off": None."""
    raw = os.environ.get(name, default).strip()
    if raw.lower() in {"", "off", "none", "false"}:
        return None
    header, sep, value = (part.strip() for part in raw.partition(","))
    if not sep or not header or not value or not all(c.isalnum() or c in "-_" for c in header):
        raise ImproperlyConfigured(f"{name} must be 'Header-Name,value' (e.g. X-Forwarded-Proto,https), got {raw!r}")
    meta = header.upper().replace("-", "_")
    return (meta if meta.startswith("HTTP_") else f"HTTP_{meta}", value)


def env_json_object(name: str, default: dict[str, Any]) -> dict[str, Any]:
    """A JSON object ({"n_layer": 12, ...}); empty: the default."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a JSON object, got {raw!r}: {exc}") from exc
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object, got {raw!r}")
    return value
