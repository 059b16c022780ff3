"""Django's SQLite backend, with every write transaction let through one gate per database file.

SQLite lets one writer in at a time. A writer that finds the lock taken waits in SQLite's busy
handler, which sleeps and retries: 1, 2, 5, 10, … then 100 ms between tries, whoever comes first
when it wakes gets the lock. Under a queue of writers (ten reviewers labelling at once) a request
can lose that race again and again: the median write took 34 ms and the 99th percentile 860 ms.

The gate queues writers before they ask SQLite: a lock per process (threads wait on it and are
woken as soon as it is free, not after a sleep) and, across processes (uvicorn's workers, Celery),
an exclusive `flock` on a file beside the database, held from `BEGIN IMMEDIATE` to the commit or
rollback, and around each write statement made outside a transaction. SQLite's own lock is then
free whenever a writer reaches it. Waiting at the gate is bounded by the `timeout` option, like
SQLite's; past it the caller gets the same `database is locked` error.

Readers never pass the gate: in WAL mode they read beside the writer.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from sqlite3 import dbapi2 as Database
from typing import Any

from django.db.backends.sqlite3 import base as sqlite3_base

# Words that begin a statement that needs no turn at the gate: reads, and the transaction control
# the wrapper itself sends (BEGIN runs with the gate already held). Any other statement made outside
# a transaction goes through the gate (a WITH may end in an INSERT: it is gated).
_UNGATED = ("SELECT", "PRAGMA", "EXPLAIN", "BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE")
# The wait at the gate when the settings give no `timeout`: Python's sqlite3 default busy timeout.
_DEFAULT_TIMEOUT = 5.0
# How long a process waits between tries for another process's gate, at most. A try costs a
# system call; the gate's holders hold it for milliseconds.
_POLL_MAX_SECONDS = 0.002


class WriterGate:
    """One database file's writer queue: a thread lock, then a `flock` on `<database>.writer-lock`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid = os.getpid()

    def _file(self) -> int:
        # An flock belongs to the open file, which a fork shares: a child opens its own.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if not self._threads.acquire(timeout=max(timeout, 0.0)):
            raise Database.OperationalError("database is locked (no turn at the writer gate)")
        try:
            fd = self._file()
            delay = 0.0001
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise Database.OperationalError(
                            "database is locked (another process kept the writer gate)"
                        ) from None
                    time.sleep(delay)
                    delay = min(delay * 2, _POLL_MAX_SECONDS)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


_gates: dict[str, WriterGate] = {}
_gates_lock = threading.Lock()


def _forget_gates() -> None:
    # A forked child may inherit a gate whose thread lock a parent's thread held at the fork.
    global _gates_lock
    _gates.clear()
    _gates_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_gates)


def gate_for(database: str) -> WriterGate:
    path = str(Path(database).resolve()) + ".writer-lock"
    with _gates_lock:
        gate = _gates.get(path)
        if gate is None:
            gate = _gates[path] = WriterGate(path)
        return gate


class GatedCursor(sqlite3_base.SQLiteCursorWrapper):
    """Outside a transaction, a write statement waits at the gate for its own implicit one."""

    gate: WriterGate | None = None
    gate_timeout: float = _DEFAULT_TIMEOUT

    @contextmanager
    def _turn(self, query: str) -> Iterator[None]:
        gate = self.gate
        if gate is None or self.connection.in_transaction or query.lstrip().upper().startswith(_UNGATED):
            yield
            return
        gate.acquire(self.gate_timeout)
        try:
            yield
        finally:
            gate.release()

    def execute(self, query: str, params: Any = None) -> Any:
        with self._turn(query):
            return super().execute(query, params)

    def executemany(self, query: str, param_list: Any) -> Any:
        with self._turn(query):
            return super().executemany(query, param_list)


# django-stubs doesn't declare the backend's private transaction hooks that this class extends
# (_start_transaction_under_autocommit, _commit, _rollback, _close): hence the ignores below.
class DatabaseWrapper(sqlite3_base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The gate this connection's open transaction holds (released at its commit or rollback).
        self._held_gate: WriterGate | None = None
        self._gate_of: tuple[str, WriterGate | None] | None = None

    def _gate(self) -> WriterGate | None:
        # Per NAME, which the test runner changes after the wrapper is made; resolving the path
        # costs more than the rest of the gate.
        name = str(self.settings_dict["NAME"])
        if self._gate_of is None or self._gate_of[0] != name:
            # An in-memory database is one connection's own: nobody to queue behind.
            self._gate_of = (name, None if self.is_in_memory_db() else gate_for(name))
        return self._gate_of[1]

    def _gate_timeout(self) -> float:
        return float(self.settings_dict.get("OPTIONS", {}).get("timeout", _DEFAULT_TIMEOUT))

    def create_cursor(self, name: str | None = None) -> Any:
        cursor = self.connection.cursor(factory=GatedCursor)
        cursor.gate = self._gate()
        cursor.gate_timeout = self._gate_timeout()
        return cursor

    def _start_transaction_under_autocommit(self) -> None:
        gate = self._gate()
        if gate is None:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
            return
        with self.wrap_database_errors:
            gate.acquire(self._gate_timeout())
        self._held_gate = gate
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
        except BaseException:
            self._release_gate()
            raise

    def _release_gate(self) -> None:
        gate, self._held_gate = self._held_gate, None
        if gate is not None:
            gate.release()

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]
        finally:
            self._release_gate()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]
        finally:
            self._release_gate()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]
        finally:
            self._release_gate()
