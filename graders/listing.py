"""The admin lists' query string (the scoring jobs, the run imports): filters checked against the values they may
take, a search, and a page of 50, with links that keep them."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict

PER_PAGE = 50
SEARCH = "q"
SEARCH_MAX = 200


@dataclass(frozen=True)
class ListQuery:
    values: dict[str, str]  # every filter and the search; "" where unset
    query: str  # the set ones as a query string, for page links (without the page)


def list_query(
    source: QueryDict, known: Mapping[str, Collection[str]], request: HttpRequest | None = None
) -> ListQuery:
    """The filters in `source` that are one of their known values, and the search.

    An unknown value is dropped (the list shows everything for that filter), with a message on the
    request when there is one: a hand-edited or stale link says what it asked for rather than failing.
    """
    values = {name: source.get(name, "").strip() for name in known}
    for name, allowed in known.items():
        if values[name] and values[name] not in allowed:
            if request is not None:
                messages.error(request, f"No {name} {values[name]!r}: showing every {name}.")
            values[name] = ""
    values[SEARCH] = source.get(SEARCH, "").strip()[:SEARCH_MAX]
    return ListQuery(values, urlencode({k: v for k, v in values.items() if v}))


def paginate(rows: QuerySet[Any], number: str | None) -> Page[Any]:
    """Page `number` of `rows` by PER_PAGE; a number that is no page gives the first, one past the end the last."""
    return Paginator(rows, PER_PAGE).get_page(number)


def with_page(query: str, number: int | None) -> str:
    """`query` and the page number, for a link back to the same page of the same list."""
    return "&".join(part for part in (query, f"page={number}" if number else "") if part)


def tidy_url(request: HttpRequest, query: ListQuery) -> str | None:
    """The list's URL without the empty fields a submitted filter form sends (`kind=&q=`), or None when it has
    none: a filtered list's address then names only what it filters by, to bookmark or share."""
    if not any(value == "" for name, value in request.GET.items() if name in (*query.values, "page")):
        return None
    page = request.GET.get("page", "")
    tidy = with_page(query.query, int(page) if page.isascii() and page.isdigit() else None)
    return f"{request.path}?{tidy}" if tidy else request.path
