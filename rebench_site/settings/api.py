"""The REST API: authentication, parsers, pagination, the schema, and the limits on what clients send."""

from __future__ import annotations

from typing import Any

from rebench_site.settings.env import env_int
from rebench_site.settings.infrastructure import REDIS_URL

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rebench_site.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "rebench_site.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rebench_site.params.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    # JSON with a nesting and size limit (a deep body is a 400, not a RecursionError) and plain forms
    # (htmx); multipart only where a file is uploaded (the view says so). Both refuse NUL characters
    # (bounded_json; rebench_site.middleware for forms), which PostgreSQL can't even compare.
    "DEFAULT_PARSER_CLASSES": [
        "rebench_site.bounded_json.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# How long an API token's user and roles are answered from the cache (the `api-tokens` alias)
# instead of two queries; revoking the token or changing its user clears it at once
# (rebench_site/authentication.py). Off (0) by default without REDIS_URL: a process-local cache
# can't be cleared by a revocation made in another process.
API_TOKEN_CACHE_SECONDS = env_int("API_TOKEN_CACHE_SECONDS", 30 if REDIS_URL else 0)
# Client JSON (API bodies, import lines): how deep it may nest and how large an API body may be.
JSON_MAX_DEPTH = env_int("JSON_MAX_DEPTH", 64)
JSON_MAX_BYTES = env_int("JSON_MAX_BYTES", 5 * 1024 * 1024)
# What a run may claim about itself: its length, and how far ahead of this server's clock it may start.
RUN_MAX_SECONDS = env_int("RUN_MAX_SECONDS", 30 * 24 * 3600)
RUN_MAX_START_AHEAD_SECONDS = env_int("RUN_MAX_START_AHEAD_SECONDS", 24 * 3600)
SPECTACULAR_SETTINGS = {
    "TITLE": "rebench_site API",
    "DESCRIPTION": "Reservations, attempts and workstations for RE-Bench human expert trials.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
}
