"""Leaderboard pieces other apps' pages show, composed in their templates (review's dashboard) so that
those apps never import graders."""

from __future__ import annotations

from typing import Any

from django import template

from graders.leaderboards.selectors import leaderboard_latest, overview_page

register = template.Library()


@register.inclusion_tag("leaderboards/_latest.html")
def latest_leaderboard_highlights(table_id: str) -> dict[str, Any]:
    """The latest snapshot's overall rows at the highlighted budgets, or a line saying there is none yet."""
    snapshot = leaderboard_latest()
    if snapshot is None:
        return {"snapshot": None}
    return {"snapshot": snapshot, "highlights": overview_page(snapshot.data)["highlights"], "table_id": table_id}
