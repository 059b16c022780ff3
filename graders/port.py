"""graders' side of the grading port (trials.grading): what trials calls when an attempt starts, ends or
changes standing, and the attempt page's scores."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User

from graders import selectors, services
from graders.leaderboards.services import leaderboard_request_recompute
from trials.models import Attempt


class GradersGrading:
    def attempt_started(self, attempt: Attempt) -> None:
        services.workspace_prepare_queue(attempt)

    def attempt_ended(self, attempt: Attempt) -> None:
        services.queue_final_scoring(attempt)

    def attempts_changed(self) -> None:
        leaderboard_request_recompute()

    def page_scores(self, attempt: Attempt, user: User | AnonymousUser) -> dict[str, Any]:
        return selectors.attempt_scores(attempt, user)

    def page_marker(self, attempt: Attempt) -> str:
        return selectors.attempt_scoring_marker(attempt)
