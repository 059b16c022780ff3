"""JSON from clients, read with a nesting limit: Python's parser recurses once per level, so a body
of a hundred thousand `[` raises RecursionError (a 500, or an import that never finishes) instead of
a clear refusal. The depth is measured before parsing, on the brackets outside strings, in C-speed
regular expressions; a document within the limit then parses as usual."""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# A JSON string (escapes included); what remains once strings are removed holds every bracket that counts.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


class TooDeep(ValueError):
    """The document nests arrays and objects deeper than the limit."""


def nesting_depth(text: str) -> int:
    """How deep `text`'s arrays and objects nest (0 for a scalar); unbalanced brackets are left to the parser."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads(text: str | bytes, *, max_depth: int | None = None) -> Any:
    """json.loads, refusing a document nested deeper than `max_depth` (JSON_MAX_DEPTH by default) with TooDeep."""
    limit = settings.JSON_MAX_DEPTH if max_depth is None else max_depth
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    depth = nesting_depth(text)
    if depth > limit:
        raise TooDeep(f"nested {depth} levels deep; at most {limit} are accepted")
    return json.loads(text)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with the nesting limit: a too-deep or malformed body is a 400 naming the problem."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        body = stream.read(settings.JSON_MAX_BYTES + 1) if stream is not None else b""
        if len(body) > settings.JSON_MAX_BYTES:
            raise ParseError(f"JSON body over {settings.JSON_MAX_BYTES:,} bytes")
        try:
            data = loads(body.decode(encoding))
        except ValueError as exc:  # TooDeep, JSONDecodeError and UnicodeDecodeError are all ValueErrors
            raise ParseError(f"JSON parse error - {exc}") from None
        if _has_nul(data):
            # PostgreSQL can't store or compare a NUL; no field of ours takes one.
            raise ParseError("JSON parse error - NUL characters (\\u0000) are not accepted")
        return data
