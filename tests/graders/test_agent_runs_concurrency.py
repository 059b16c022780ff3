"""Simultaneous writes of the same run, each on its own connection: always one run, never an error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from graders.imports import services
from graders.models import ScoreLogEntry
from tests import factories
from tests.graders.run_import_support import metr_row, write_jsonl
from tests.trials.test_booking_concurrency import race
from trials.models import Attempt

ON_SQLITE = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
ON_EITHER_DATABASE = pytest.mark.parametrize(
    "vendor",
    [
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("sqlite", marks=pytest.mark.skipif(not ON_SQLITE, reason="runs on SQLite only")),
    ],
)
RACERS = 12


@ON_EITHER_DATABASE
@pytest.mark.django_db(transaction=True)
def test_a_harness_creating_the_same_run_from_many_connections_at_once_gets_one_run(vendor: str) -> None:
    assert connection.vendor == vendor
    factories.environment()
    harness = factories.UserFactory.create(username="h1", roles=["harness"])

    def prepare(i: int) -> Any:
        return lambda: services.agent_run_create(
            by=harness, run_id="same-run", environment="ai_rd_triton_cumsum", agent_name=f"agent-{i}"
        )

    outcomes = race(prepare, racers=RACERS)

    runs = [o for o in outcomes if not isinstance(o, BaseException)]
    assert runs == outcomes
    assert sum(1 for _, created in runs if created) == 1
    assert len({attempt.pk for attempt, _ in runs}) == 1
    assert Attempt.objects.filter(source="api").count() == 1


@ON_EITHER_DATABASE
@pytest.mark.django_db(transaction=True)
def test_the_same_file_imported_twice_at_once_writes_each_run_once(vendor: str, tmp_path: Path) -> None:
    assert connection.vendor == vendor
    factories.environment()
    settings_media = tmp_path / "media"
    path = write_jsonl(tmp_path / "runs.jsonl", [metr_row(f"r{i}") for i in range(40)])
    imports = []
    for _ in range(2):
        with path.open("rb") as handle, _media(settings_media):
            imports.append(
                services.run_import_create(
                    upload=handle, name=path.name, size=path.stat().st_size, by=None, queue=False
                )
            )

    def prepare(i: int) -> Any:
        return lambda: services.run_import_execute(run_import_id=imports[i].pk)

    with _media(settings_media):
        results = race(prepare, racers=2)

    imported = [r for r in results if not isinstance(r, BaseException)]
    assert imported == results, results
    assert [r.status for r in imported] == ["done", "done"], [r.error for r in imported]
    assert sorted((r.runs_created, r.runs_updated) for r in imported) == [(0, 40), (40, 0)]
    assert Attempt.objects.filter(source="metr_runs").count() == 40
    assert ScoreLogEntry.objects.count() == 40


def _media(root: Path) -> Any:
    from django.test import override_settings

    return override_settings(MEDIA_ROOT=str(root))
