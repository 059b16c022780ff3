"""Fixtures for grading: private workspace/protected folders, test environments with misbehaving scorers."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from environments.models import Environment
from tests import factories
from trials.models import Attempt

PACKAGES = Path(__file__).resolve().parent / "packages"


@pytest.fixture
def grading_dirs(settings) -> Iterator[Path]:
    """Workspaces and protected folders of this test, under DATA_DIR.

    Not under pytest's tmp_path: as root the scorer runs as the expert's user, who can't enter
    root's private /tmp/pytest-of-root.
    """
    root = Path(django_settings.DATA_DIR) / f"test-grading-{uuid.uuid4().hex[:12]}"
    (root / "workspaces").mkdir(parents=True)
    root.chmod(0o755)
    (root / "workspaces").chmod(0o755)
    settings.TERMINAL_WORKSPACE_ROOT = root / "workspaces"
    settings.PROTECTED_DIR = root / "protected"
    settings.GRADING_PACKAGE_DIRS = [str(PACKAGES)]
    yield root
    shutil.rmtree(root, ignore_errors=True)


def package_environment(slug: str, **fields: object) -> Environment:
    """An Environment row for one of the test packages: higher is better, 0 → 1, max."""
    defaults: dict[str, object] = {
        "title": slug,
        "direction": Environment.Direction.HIGHER,
        "aggregation": Environment.Aggregation.MAX,
        "starting_score": 0.0,
        "reference_score": 1.0,
        "gpus_min": 0,
        "gpus_max": 0,
    }
    defaults.update(fields)
    environment, _ = Environment.objects.update_or_create(slug=slug, defaults=defaults)
    return environment


@pytest.fixture
def attempt_on(db, grading_dirs) -> Callable[..., Attempt]:
    """`attempt_on(slug)`: a running attempt at a test or built-in environment, the first one by ada."""

    made: list[Attempt] = []

    def make(slug: str, **fields: object) -> Attempt:
        if slug.startswith("grading_test_"):
            environment = package_environment(slug, **fields)
        else:
            environment = factories.environment(slug)
        # A new expert and workstation for each: PostgreSQL's exclusion constraints refuse overlapping slots.
        username = "ada" if not made else f"ada{len(made) + 1}"
        reservation = factories.ReservationFactory.create(
            expert=factories.expert(username=username),
            environment=environment,
            workstation__name=f"ws-{len(made)}-{slug[-20:]}",
        )
        made.append(factories.AttemptFactory.create(reservation=reservation))
        return made[-1]

    return make
