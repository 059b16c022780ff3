"""Fixtures for attacks from an expert's shell: real attempts on the `local` workstation, through the terminal."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import factories
from tests.trials import terminal_support as ts
from trials.models import Attempt, Workstation

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox switches users and makes cgroups: needs root")
PACKAGES = Path(__file__).resolve().parent.parent / "graders" / "packages"


@pytest.fixture
def term_dirs(settings: Any) -> Iterator[Path]:
    root = ts.make_dirs(settings)
    settings.GRADING_PACKAGE_DIRS = [str(PACKAGES)]
    yield root
    ts.cleanup_dirs(root)


def local_attempt_at(slug: str = "ai_rd_triton_cumsum", **attempt: Any) -> Attempt:
    """A running attempt on a `local` workstation of 8 GPUs (the demo's), by a new expert."""
    if slug.startswith("grading_test_"):
        from tests.graders.conftest import package_environment

        environment = package_environment(slug, gpus_min=1, gpus_max=1, cpus=13, memory_gb=100)
    else:
        environment = factories.environment(slug)
    reservation = factories.ReservationFactory.create(
        environment=environment,
        workstation__backend=Workstation.Backend.LOCAL,
        workstation__gpu_count=8,
        **({"gpus": attempt.pop("gpus")} if "gpus" in attempt else {}),
    )
    return factories.AttemptFactory.create(reservation=reservation, **attempt)


def end_everything(attempt: Attempt) -> None:
    from workstation.backends.local import end_attempt_sync

    end_attempt_sync(attempt.pk)


@pytest.fixture
def attempt(term_dirs: Path) -> Iterator[Attempt]:
    made = local_attempt_at()
    yield made
    end_everything(made)


@pytest.fixture
def another_attempt(term_dirs: Path) -> Iterator[Attempt]:
    made = local_attempt_at()
    yield made
    end_everything(made)


@pytest.fixture
def short_attempt(term_dirs: Path) -> Iterator[Attempt]:
    """An attempt at the test package grading_test_ok whose clock runs out 12 seconds from now: time for
    a shell to open and start work on a loaded machine (at 6 s, a CI run with four workers once missed it)."""
    made = local_attempt_at("grading_test_ok", time_limit=timedelta(seconds=12))
    yield made
    end_everything(made)
