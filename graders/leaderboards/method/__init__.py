"""The leaderboard method in plain numpy: score_r(t), expected best-of-k, budget curves, bootstrap CIs.

docs/leaderboard-method.md states it in words; this package is that text, vectorised, one module per
step: the definitions, the inputs, score_r(t) (`score`), one group's curve with its bootstrap replicates
(`curves`), confidence intervals (`intervals`), the overall mean (`overall`), the tables, and
`compute`, which runs them in order. Nothing here touches Django: selectors.py turns the database
into `LeaderboardInput`, and the benchmark builds one directly. Callers import this package (`from
graders.leaderboards import method`) and find every name here; a test that replaces a name replaces it
in the module that looks it up.
"""

from __future__ import annotations

from graders.leaderboards.method._shared import (
    BUDGET_HOURS,
    CI_LEVEL,
    HIGHLIGHT_HOURS,
    HOUR,
    HUMANS,
    FloatArray,
    IntArray,
)
from graders.leaderboards.method.compute import leaderboard_compute
from graders.leaderboards.method.curves import RUN_COUNT_KINDS, group_curve, run_end_columns
from graders.leaderboards.method.definitions import _max_cdf, budget_k, expected_best_of_k, normalise
from graders.leaderboards.method.inputs import EnvironmentInfo, GroupInfo, LeaderboardInput, LeaderboardResult
from graders.leaderboards.method.score import score_matrix
from graders.leaderboards.method.tables import _tables

__all__ = [
    "BUDGET_HOURS",
    "CI_LEVEL",
    "HIGHLIGHT_HOURS",
    "HOUR",
    "HUMANS",
    "RUN_COUNT_KINDS",
    "EnvironmentInfo",
    "FloatArray",
    "GroupInfo",
    "IntArray",
    "LeaderboardInput",
    "LeaderboardResult",
    "_max_cdf",
    "_tables",
    "budget_k",
    "expected_best_of_k",
    "group_curve",
    "leaderboard_compute",
    "normalise",
    "run_end_columns",
    "score_matrix",
]
