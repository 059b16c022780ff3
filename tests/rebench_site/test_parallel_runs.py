"""The parallel test run's workers share no data folder and no Redis database (tests/parallel.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import parallel


def test_each_worker_gets_its_own_data_folder_and_redis_databases_and_shares_the_model_cache(tmp_path: Path) -> None:
    environ = {"REDIS_URL": "redis://127.0.0.1:6379/2"}
    workers = [parallel.worker_environment(index, data_dir=tmp_path, environ=environ) for index in range(4)]

    assert [w["DATA_DIR"] for w in workers] == [str(tmp_path / "test-workers" / f"gw{i}") for i in range(4)]
    assert all(Path(w["DATA_DIR"]).is_dir() for w in workers)
    assert [w["REDIS_URL"] for w in workers] == [f"redis://127.0.0.1:6379/{db}" for db in (2, 3, 4, 5)]
    assert [w["REBENCH_TEST_REDIS_DB"] for w in workers] == ["15", "14", "13", "12"]
    assert {w[parallel.SHARED_DATA_ENV] for w in workers} == {str(tmp_path)}


def test_too_many_workers_for_the_redis_databases_is_refused_with_the_remedy(tmp_path: Path) -> None:
    environ = {"REDIS_URL": "redis://127.0.0.1:6379/6"}
    parallel.worker_environment(4, data_dir=tmp_path, environ=environ)  # 10 and 11: apart
    with pytest.raises(RuntimeError, match="run fewer workers"):
        parallel.worker_environment(5, data_dir=tmp_path, environ=environ)  # 11 and 10: crossed


def test_without_redis_the_workers_get_their_data_folders_only(tmp_path: Path) -> None:
    worker = parallel.worker_environment(1, data_dir=tmp_path, environ={})
    assert "REDIS_URL" not in worker
    assert worker["DATA_DIR"].endswith("gw1")


def test_every_file_the_scheduler_names_exists_so_a_rename_cant_quietly_undo_it() -> None:
    root = Path(__file__).resolve().parents[2]
    groups = set(parallel.SHARED_SCOPES.values())
    named = [*parallel.SHARED_SCOPES, *parallel.TEST_BY_TEST, *(s for s in parallel.LONGEST_FIRST if s not in groups)]
    assert [path for path in named if not (root / path).is_file()] == []
