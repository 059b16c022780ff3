"""Query-string values from clients, read so that nothing a client sends becomes a 500."""

from __future__ import annotations

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
