"""Scenarios for test_sqlite_writer_gate.py, each run as `python -m tests.rebench_site.sqlite_gate_scenarios
<name>` with the embedded default's settings (no DATABASE_URL) on a DATA_DIR of the test's own.

Each prints one JSON line of what it saw; the test asserts on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import traceback
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebench_site.settings")
django.setup()

from django.db import OperationalError, connection, connections, transaction  # noqa: E402  (after setup)


def table() -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS t (x integer)")
    connection.close()


def rows() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT x FROM t ORDER BY x")
        return [r[0] for r in cursor.fetchall()]


def where_waiting(thread: threading.Thread) -> list[str]:
    """The waiting thread's Python frames, innermost last, as `package/folder/file.py:function`."""
    frame = sys._current_frames()[thread.ident or 0]
    return ["/".join(f.filename.split("/")[-3:]) + f":{f.name}" for f in traceback.extract_stack(frame)]


def holding(seconds_after: threading.Event, *values: int) -> None:
    """Open a write transaction, write, say so, and commit when told."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            for v in values:
                cursor.execute("INSERT INTO t VALUES (%s)", [v])
        HELD.set()
        seconds_after.wait(30)
    connections.close_all()


HELD = threading.Event()


def threads() -> dict[str, Any]:
    """While one thread holds a write transaction, one thread asks for another and one writes outside
    any: where do they wait, and do both get in once the first commits?"""
    table()
    go = threading.Event()
    errors: list[str] = []

    def in_transaction() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("INSERT INTO t VALUES (2)")
        except Exception as exc:  # reported
            errors.append(repr(exc))
        finally:
            connections.close_all()

    def autocommit() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO t VALUES (3)")
        except Exception as exc:  # reported
            errors.append(repr(exc))
        finally:
            connections.close_all()

    first = threading.Thread(target=holding, args=(go, 1))
    first.start()
    HELD.wait(10)
    second, third = threading.Thread(target=in_transaction), threading.Thread(target=autocommit)
    second.start()
    third.start()
    time.sleep(0.5)
    waiting = {"transaction": where_waiting(second), "autocommit": where_waiting(third)}
    go.set()
    for t in (first, second, third):
        t.join(30)
    return {"waiting": waiting, "errors": errors, "rows": rows()}


def other_process() -> dict[str, Any]:
    """This process holds a write transaction; another process writes. The other one dumps its
    threads' stacks while it waits (faulthandler), then reports whether its write went in."""
    table()
    go = threading.Event()
    first = threading.Thread(target=holding, args=(go, 1))
    first.start()
    HELD.wait(10)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.rebench_site.sqlite_gate_scenarios", "write_once"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    ready = child.stdout.readline().strip()  # the child is set up and about to write
    time.sleep(1.5)
    still_waiting = child.poll() is None
    go.set()
    first.join(30)
    out, err = child.communicate(timeout=30)
    return {"ready": ready, "still_waiting": still_waiting, "child": out.strip(), "stacks": err, "rows": rows()}


def write_once() -> dict[str, Any]:
    import faulthandler

    print("ready", flush=True)
    faulthandler.dump_traceback_later(0.7, exit=False)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO t VALUES (2)")
    faulthandler.cancel_dump_traceback_later()
    return {"wrote": True}


def timeout() -> dict[str, Any]:
    """A writer whose turn doesn't come within the timeout gets SQLite's own error and leaves the gate
    as it found it: once the holder commits, the same thread writes."""
    table()
    go = threading.Event()
    first = threading.Thread(target=holding, args=(go, 1))
    first.start()
    HELD.wait(10)
    connection.settings_dict["OPTIONS"]["timeout"] = 0.3
    seen: dict[str, Any] = {}
    began = time.monotonic()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO t VALUES (2)")
    except OperationalError as exc:
        seen["error"] = str(exc)
    seen["waited"] = round(time.monotonic() - began, 2)
    go.set()
    first.join(30)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO t VALUES (3)")
    seen["rows"] = rows()
    return seen


if __name__ == "__main__":
    print(json.dumps(globals()[sys.argv[1]]()), flush=True)
