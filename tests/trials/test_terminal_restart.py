"""The shell outlives the web server: restart the ASGI server process and the terminal reattaches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from websockets.sync.client import ClientConnection, connect

from tests import factories
from tests.trials import terminal_support as ts
from trials.models import Workstation

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]
ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(settings, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "TERMINAL_WORKSPACE_ROOT": str(settings.TERMINAL_WORKSPACE_ROOT),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "TERMINAL_TMUX_SOCKET_PREFIX": settings.TERMINAL_TMUX_SOCKET_PREFIX,
        "LOG_LEVEL": "WARNING",
    }
    argv = [sys.executable, "-m", "uvicorn", "rebench_site.asgi:application", "--host", "127.0.0.1"]
    process = subprocess.Popen([*argv, "--port", str(port)], env=env, cwd=ROOT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the ASGI server did not start")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def read_until(ws: ClientConnection, needle: str, timeout: float = 15) -> str:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} not seen; got {seen[-1000:]!r}"
        try:
            message = ws.recv(timeout=left)
        except TimeoutError:
            continue
        if isinstance(message, bytes):
            seen += message[1:]
            ws.send(ts.ack_frame(len(message) - 1))
        elif json.loads(message).get("type") == "close":
            raise AssertionError(f"closed: {message}")
    return seen.decode(errors="replace")


def test_the_shell_and_its_variables_survive_a_restart_of_the_asgi_server_process(settings) -> None:
    root = ts.make_dirs(settings)
    attempt = factories.AttemptFactory.create(reservation__workstation__backend=Workstation.Backend.LOCAL)
    client = Client()
    assert attempt.user is not None
    client.force_login(attempt.user)
    port = free_port()
    headers = {"Cookie": f"sessionid={client.cookies['sessionid'].value}", "Origin": f"http://127.0.0.1:{port}"}
    url = f"ws://127.0.0.1:{port}{ts.ws_path(attempt.pk)}"
    server = start_server(settings, port)
    try:
        with connect(url, additional_headers=headers, open_timeout=10) as ws:
            read_until(ws, "$ ")
            ws.send(ts.input_frame(f"export X=42; PS1='{ts.PROMPT[:-2]}''$ '\r"))
            read_until(ws, ts.PROMPT)
        stop_server(server)
        server = start_server(settings, port)
        with connect(url, additional_headers=headers, open_timeout=10) as ws:
            read_until(ws, ts.PROMPT)  # tmux redraws the same screen: the same shell
            ws.send(ts.input_frame("echo X is $X.\r"))
            read_until(ws, "X is 42.")
    finally:
        stop_server(server)
        from workstation.backends.local import end_attempt_sync

        end_attempt_sync(attempt.pk)
        ts.cleanup_dirs(root)
