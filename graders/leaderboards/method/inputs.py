"""The inputs (environments, groups, columnar runs and entries) and the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graders.leaderboards.method._shared import (
    CI_LEVEL,
    HIGHLIGHT_HOURS,
    FloatArray,
    IntArray,
)


@dataclass(frozen=True)
class EnvironmentInfo:
    slug: str
    title: str
    starting_score: float
    reference_score: float
    aggregation: str
    configuration: str = ""  # the configuration version these constants are, e.g. "full v2"


@dataclass(frozen=True)
class GroupInfo:
    """Who a curve is for: all humans together, or one agent (name, model, scaffold)."""

    key: str
    kind: str
    label: str
    agent_name: str = ""
    agent_model: str = ""
    agent_scaffold: str = ""


@dataclass
class LeaderboardInput:
    """Columnar runs and score-log entries. Entries are in log order within each run."""

    environments: list[EnvironmentInfo]
    groups: list[GroupInfo]
    run_env: IntArray
    run_group: IntArray
    run_length: FloatArray  # seconds
    run_id: list[Any]
    run_participant: list[str]  # expert or agent label shown in tables
    run_user: list[int | None]  # the local expert, for "experts see their own rows"
    entry_run: IntArray
    entry_elapsed: FloatArray  # seconds of working time
    entry_raw: FloatArray  # NaN: invalid
    # The environments the overall curve averages (RE-Bench's seven); empty: every environment here.
    overall_environments: list[str] = field(default_factory=list)
    # The configuration every run here was scored at (one leaderboard per configuration).
    configuration: str = ""
    # Each run's own configuration-version constants; empty: the environment's (EnvironmentInfo).
    run_start: FloatArray = field(default_factory=lambda: np.array([]))
    run_reference: FloatArray = field(default_factory=lambda: np.array([]))

    @property
    def run_count(self) -> int:
        return int(self.run_env.size)


@dataclass
class LeaderboardResult:
    budget_hours: list[float]
    environments: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    curves: list[dict[str, Any]] = field(default_factory=list)
    humans: list[dict[str, Any]] = field(default_factory=list)
    agents: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    resamples: int = 0
    seed: int = 0
    configuration: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "method": "best-of-k by total time budget; docs/leaderboard-method.md",
            "configuration": self.configuration,
            "budget_hours": self.budget_hours,
            "highlight_hours": list(HIGHLIGHT_HOURS),
            "ci_level": CI_LEVEL,
            "resamples": self.resamples,
            "seed": self.seed,
            "environments": self.environments,
            "groups": self.groups,
            "curves": self.curves,
            "humans": self.humans,
            "agents": self.agents,
            "runs": self.runs,
        }
