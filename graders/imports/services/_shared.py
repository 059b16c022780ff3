"""What the run-import services share: the user type, and the leaderboard recompute they ask for."""

from __future__ import annotations


def _request_leaderboard_recompute() -> None:
    from graders.leaderboards.services import leaderboard_request_recompute  # leaderboards read what we write

    leaderboard_request_recompute()
