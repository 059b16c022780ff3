"""PostgreSQL connections from a pool (DB_POOL): the test database's, a forked worker's own; a bad mix refused.

DB_POOL is off by default, so the suite usually runs without a pool: the tests that need one are then
run again in a pytest of their own with DB_POOL=true.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connection as default_connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[2]
# The PostgreSQL wrapper, which has the pool (the suite runs these only there).
connection: Any = default_connection
with_the_pool = pytest.mark.skipif(not settings.DB_POOL, reason="DB_POOL is off: run in a pytest of its own below")


def test_with_the_pool_on_in_a_run_of_its_own() -> None:
    if settings.DB_POOL:
        pytest.skip("the pool is on in this run: its tests ran here")
    # A database name of its own: this run's test database (test_<name>) is open here.
    url = urlsplit(os.environ["DATABASE_URL"])
    database_url = url._replace(path=f"{url.path}_pool").geturl()
    env = {**os.environ, "DATABASE_URL": database_url, "DB_POOL": "true", "DB_CONN_MAX_AGE": "0"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q", "-m", "postgres", __file__],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "3 passed" in run.stdout, run.stdout[-3000:]


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


@with_the_pool
def test_the_pool_serves_the_test_database_not_the_one_it_was_configured_with() -> None:
    pool = connection.pool
    assert pool is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        (name,) = cursor.fetchone()
    assert name == connection.settings_dict["NAME"]
    assert name.startswith("test_")
    assert pool.kwargs["dbname"] == name


@with_the_pool
def test_a_forked_worker_process_opens_its_own_pool_and_leaves_the_parents_alone() -> None:
    from rebench_site.celery import database_pools_of_its_own

    parent_pid = backend_pid()
    parent_pool = connection.pool
    child = os.fork()
    if child == 0:  # the worker process, as prefork makes it
        code = 1
        try:
            database_pools_of_its_own()
            connection.connection = None  # Celery's fixup closes the inherited socket's descriptor
            code = 0 if connection.pool is not parent_pool and backend_pid() != parent_pid else 2
        finally:
            os._exit(code)  # no cleanup: it would run the parent's atexit hooks and close shared sockets
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's session survived the child.
    assert backend_pid() == parent_pid


def test_a_kept_connection_age_with_the_pool_stops_the_site_at_start() -> None:
    env = {**os.environ, "DB_CONN_MAX_AGE": "60", "DB_POOL": "true"}
    run = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "rebench_site.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "DB_CONN_MAX_AGE must be 0 with DB_POOL" in run.stderr
