"""The leaderboards' models moved out of graders by migrations that change Django's state only: they
must never emit SQL (a DeleteModel run on the database would drop the tables with every snapshot),
and a database migrated across them, either way, keeps its rows."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import SeparateDatabaseAndState
from django.utils import timezone

from graders.leaderboards.models import LeaderboardRecompute, LeaderboardSnapshot

# graders lets the models go, then leaderboards takes them up: the order the graph must keep.
GRADERS_LETS_GO = ("graders", "0006_leaderboards_leave_for_their_app")
LEADERBOARDS_TAKE_UP = ("leaderboards", "0001_initial")
STATE_ONLY = [GRADERS_LETS_GO, LEADERBOARDS_TAKE_UP]
BEFORE_THE_MOVE = ("graders", "0005_snapshot_runs_table")


def test_the_models_keep_the_tables_graders_created() -> None:
    assert LeaderboardSnapshot._meta.db_table == "graders_leaderboardsnapshot"
    assert LeaderboardRecompute._meta.db_table == "graders_leaderboardrecompute"


@pytest.mark.parametrize("key", STATE_ONLY, ids=lambda key: ".".join(key))
def test_the_moving_migrations_hold_state_operations_only(key: tuple[str, str]) -> None:
    migration = MigrationLoader(None, ignore_no_migrations=True).graph.nodes[key]
    assert migration.operations
    for operation in migration.operations:
        assert isinstance(operation, SeparateDatabaseAndState)
        assert operation.database_operations == []


def test_leaderboards_take_the_models_up_only_after_graders_let_them_go() -> None:
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    assert GRADERS_LETS_GO in graph.forwards_plan(LEADERBOARDS_TAKE_UP)
    # trials' configuration backfill reads graders.LeaderboardSnapshot from the historical models.
    assert ("trials", "0009_backfill_configurations") in graph.forwards_plan(GRADERS_LETS_GO)


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("backwards", [False, True], ids=["forwards", "backwards"])
@pytest.mark.parametrize("key", STATE_ONLY, ids=lambda key: ".".join(key))
def test_the_moving_migrations_emit_no_sql(key: tuple[str, str], backwards: bool) -> None:
    out = io.StringIO()
    call_command("sqlmigrate", *key, backwards=backwards, stdout=out, no_color=True)
    statements = [line for line in out.getvalue().splitlines() if line.strip() and not line.startswith("--")]
    assert statements == ["BEGIN;", "COMMIT;"]


@pytest.mark.postgres
@pytest.mark.django_db
def test_rows_survive_migrating_back_across_the_move_and_forward_again() -> None:
    snapshot = LeaderboardSnapshot.objects.create(
        computed_at=timezone.now(), configuration="small", runs=7, data={"agents": []}, runs_table=b"rows"
    )
    LeaderboardRecompute.objects.create(requests=3)
    executor = MigrationExecutor(connection)

    executor.migrate([BEFORE_THE_MOVE])
    old = executor.loader.project_state(BEFORE_THE_MOVE).apps
    assert list(old.get_model("graders", "LeaderboardSnapshot").objects.values_list("pk", "runs")) == [(snapshot.pk, 7)]
    assert list(old.get_model("graders", "LeaderboardRecompute").objects.values_list("requests", flat=True)) == [3]

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    moved = LeaderboardSnapshot.objects.get()
    assert (moved.pk, moved.configuration, moved.runs, bytes(moved.runs_table)) == (snapshot.pk, "small", 7, b"rows")
    assert LeaderboardRecompute.objects.get().requests == 3
