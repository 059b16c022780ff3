"""Unix socket addresses are limited to 107 bytes; a deep data folder must not stop a sandbox or a scorer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from workstation.sandbox import unix_path

SPAWNER = Path(__file__).resolve().parents[2] / "workstation" / "sandbox" / "spawner.py"


def deep_folder(tmp_path: Path) -> Path:
    folder = tmp_path / ("a-long-folder-name-" * 4) / ("another-long-one-" * 4)
    folder.mkdir(parents=True)
    return folder


def test_a_socket_deeper_than_an_address_may_be_is_bound_and_reached_at_its_own_path(tmp_path: Path) -> None:
    path = str(deep_folder(tmp_path) / "harness.sock")
    assert len(path) > 107
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with unix_path(path) as address:
        listener.bind(address)
    listener.listen(1)
    assert Path(path).is_socket()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with unix_path(path) as address:
        client.connect(address)
    connection, _ = listener.accept()
    client.sendall(b"ping")
    assert connection.recv(4) == b"ping"
    for each in (client, connection, listener):
        each.close()


def test_the_attach_client_reaches_a_spawner_socket_in_a_deep_folder(tmp_path: Path) -> None:
    """attach connects (and then waits for a shell that never comes: it is stopped once connected)."""
    path = str(deep_folder(tmp_path) / "spawn.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with unix_path(path) as address:
        listener.bind(address)
    listener.listen(1)
    listener.settimeout(10)
    master, slave = os.openpty()
    client = subprocess.Popen([sys.executable, str(SPAWNER), "attach", path], stdin=slave, stdout=slave, stderr=slave)
    try:
        connection, _ = listener.accept()
        connection.close()
    finally:
        client.kill()
        client.wait()
        os.close(slave)
        os.close(master)
        listener.close()
