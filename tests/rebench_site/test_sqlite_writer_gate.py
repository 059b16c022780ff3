"""The embedded database's writers queue at rebench_site.sqlite3's gate, not in SQLite's busy handler.

SQLite's handler sleeps between tries (up to 100 ms) and hands the lock to whoever tries first after
it is freed; the gate wakes the next writer when the lock is free. Each scenario runs in processes of
its own on a SQLite file in a fresh DATA_DIR (the suite itself may run on PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GATE = "rebench_site/sqlite3/base.py:acquire"


def scenario(name: str, tmp_path: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    env["DATA_DIR"] = str(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "tests.rebench_site.sqlite_gate_scenarios", name],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def test_writers_in_one_process_wait_at_the_gate_and_both_get_in_when_the_holder_commits(tmp_path: Path) -> None:
    seen = scenario("threads", tmp_path)
    assert GATE in seen["waiting"]["transaction"][-1], seen["waiting"]["transaction"]
    # A write outside any transaction (a plain save) queues with the rest, not in SQLite's handler.
    assert GATE in seen["waiting"]["autocommit"][-1], seen["waiting"]["autocommit"]
    assert seen["errors"] == []
    assert seen["rows"] == [1, 2, 3]


def test_a_writer_in_another_process_waits_at_the_gate_until_the_holder_commits(tmp_path: Path) -> None:
    seen = scenario("other_process", tmp_path)
    assert seen["ready"] == "ready"
    assert seen["still_waiting"] is True
    assert json.loads(seen["child"]) == {"wrote": True}
    # faulthandler's dump, taken while the other process waited: innermost frame first.
    waiting = seen["stacks"].split("File ")[1]
    assert "rebench_site/sqlite3/base.py" in waiting, seen["stacks"]
    assert "in acquire" in waiting, seen["stacks"]
    assert seen["rows"] == [1, 2]


def test_a_writer_past_the_timeout_gets_database_is_locked_and_leaves_the_gate_free(tmp_path: Path) -> None:
    seen = scenario("timeout", tmp_path)
    assert "database is locked" in seen["error"]
    assert 0.3 <= seen["waited"] < 5
    assert seen["rows"] == [1, 3]
