"""Query-string values from clients, read so that nothing a client sends becomes a 500."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

# The largest primary key (a BigAutoField); a larger number is no row's id (and would overflow the column).
MAX_ID = 2**63 - 1


def id_param(raw: object) -> int | None:
    """A row's id from a query string or form: ASCII digits within a key's range, else None.

    (str.isdigit takes "²" and "٣", which int() refuses or reads as another number.)
    """
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit():
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """DRF's limit/offset pages with both numbers bounded: a limit or offset past a bigint is a
    database error (a 500), and a page of millions of rows is no page."""

    max_limit = 1000
    max_offset = MAX_ID

    def get_offset(self, request: Request) -> int:
        return min(super().get_offset(request), self.max_offset)
