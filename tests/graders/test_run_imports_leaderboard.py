"""Imported and API runs reach the leaderboards: agents by name and model, imported humans by their label."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from graders.imports import services
from graders.leaderboards.services import leaderboard_snapshot_create
from tests import factories
from tests.graders.run_import_support import metr_row, write_jsonl

pytestmark = pytest.mark.django_db


def test_imported_agents_and_humans_and_api_runs_appear_on_the_environment_leaderboard(
    settings: Any, tmp_path: Path, admin_user: Any
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LEADERBOARD_BOOTSTRAP_RESAMPLES = 50
    factories.environment()
    rows = [metr_row(f"a{i}", score_cont=0.2 + i / 10) for i in range(3)]
    rows += [
        metr_row(f"h{i}", alias="human", human_id=f"expert-{i}", time_limit=28800, score_cont=0.6) for i in range(2)
    ]
    path = write_jsonl(tmp_path / "runs.jsonl", rows)
    with path.open("rb") as handle:
        created = services.run_import_create(
            upload=handle, name=path.name, size=path.stat().st_size, by=None, queue=False
        )
    assert services.run_import_execute(run_import_id=created.pk).status == "done"
    harness = factories.UserFactory.create(username="h1", roles=["harness"])
    run, _ = services.agent_run_create(
        by=harness, run_id="x", environment="ai_rd_triton_cumsum", agent_name="triframe", agent_model="gpt-4o"
    )
    services.agent_run_log_score(attempt=run, by=harness, elapsed_seconds=100, score=1.0)
    services.agent_run_finish(attempt=run, by=harness)

    snapshot = leaderboard_snapshot_create()

    assert snapshot.runs == 6
    client = Client()
    client.force_login(admin_user)
    html = client.get("/leaderboards/environments/ai_rd_triton_cumsum/").content.decode()
    assert "Claude 3.5 Sonnet (New)" in html
    assert "triframe" in html
    exported = json.loads(client.get("/leaderboards/export/runs.json").content)
    participants = {row["participant"] for row in exported["rows"]}
    assert {"expert-0", "expert-1"} <= participants
