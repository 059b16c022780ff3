"""What trials needs from grading, as a port that graders fills in when the apps load.

graders reads attempts, so graders sits above trials and trials never imports it. Where an attempt's
life has to reach grading (started: prepare the workspace and score the starting solution; ended:
the final scoring; included or excluded: the leaderboards change) and where the attempt page shows
scores, trials calls this port; `graders.apps.GradersConfig.ready` registers the implementation
(`graders.port.GradersGrading`). One implementation, whole: callers never ask whether grading is
there, and a project without graders fails at the first call with the reason, not with a missing key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

    from trials.models import Attempt


class Grading(Protocol):
    def attempt_started(self, attempt: Attempt) -> None:
        """The attempt was created (inside the transaction): prepare its workspace after commit."""

    def attempt_ended(self, attempt: Attempt) -> None:
        """The attempt ended (after commit): queue its final scoring; never raises."""

    def attempts_changed(self) -> None:
        """An attempt's standing changed (excluded, included): recompute the leaderboards after commit."""

    def page_scores(self, attempt: Attempt, user: User | AnonymousUser) -> dict[str, Any]:
        """The attempt page's grading context: at least `has_scorer`, `score_rows` and `score_job`."""

    def page_marker(self, attempt: Attempt) -> str:
        """What changes when the attempt's scoring does; the page refetches its live parts when it moves."""


_grading: Grading | None = None


def grading_register(implementation: Grading) -> None:
    global _grading  # the one registration, made once when the apps load
    _grading = implementation


def grading() -> Grading:
    if _grading is None:
        raise ImproperlyConfigured("trials needs grading: add graders to INSTALLED_APPS")
    return _grading
