"""Admins' completion list: filtered by queue, label state and source, searched by text."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from rebench_site.params import id_param
from rebench_site.roles import ADMIN, AuthenticatedHttpRequest, role_required
from review import selectors
from review.models import Completion, ReviewQueue

COMPLETIONS_PER_PAGE = 50


@role_required(ADMIN)
@require_GET
def completion_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every completion, newest first, 50 a page; filtered by queue, label state and source, searched by text."""
    filters = {name: request.GET.get(name, "").strip() for name in ("queue", "state", "source", "q")}
    queue = None
    if filters["queue"]:
        queue_id = id_param(filters["queue"])
        queue = ReviewQueue.objects.filter(pk=queue_id).first() if queue_id else None
    known = {
        "queue": queue is not None,
        "state": filters["state"] in selectors.COMPLETION_LABEL_STATES,
        "source": filters["source"] in Completion.Source.values,
    }
    for name, ok in known.items():
        if filters[name] and not ok:
            messages.error(request, f"{name}: no {name} “{filters[name][:50]}”; showing every {name}.")
            filters[name] = ""
    filters["q"] = filters["q"][:200]
    completions = selectors.completions_for_admin(
        queue=queue, state=filters["state"], source=filters["source"], q=filters["q"]
    )
    page = Paginator(completions, COMPLETIONS_PER_PAGE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    counts = selectors.label_counts(completion_ids=[c.pk for c in rows], queue=queue)
    return render(
        request,
        "review/completion_list.html",
        {
            "rows": [(c, counts[c.pk]) for c in rows],
            "page": page,
            "filters": filters,
            "filter_queue": queue,
            "query": urlencode({k: v for k, v in filters.items() if v}),
            "queues": ReviewQueue.objects.order_by("-created_at", "-id").values_list("pk", "name"),
            "states": selectors.COMPLETION_LABEL_STATES.items(),
            "sources": Completion.Source.choices,
        },
    )
