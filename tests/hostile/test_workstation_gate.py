"""Whoever holds the site's SSH key for a workstation (a copy that leaked, a command line it builds from
an attempt's data) gets the gate's verbs on that host, and nothing else: no shell, no command of theirs,
no PTY, no forwarding into the host's network, no path outside an attempt's workspace.

The workstation is OpenSSH's sshd on loopback with the key's line as the set-up writes it
(`command="…rebench-gate",restrict`, root's), so each attack goes through the real forced command.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import ssh_access_support as ssh_support
from tests.hostile.conftest import ROOT_ONLY
from tests.trials.ssh_server import workstation_settings
from trials.models import Attempt
from trials.selectors import attempt_sandbox_request
from workstation import layout
from workstation.backends.local import sandbox_up

pytestmark = [ROOT_ONLY, pytest.mark.django_db, pytest.mark.timeout(120)]


@pytest.fixture
def workstation(attempt: Attempt, term_dirs: Path, settings: Any) -> Iterator[tuple[ssh_support.SSHServer, Path]]:
    with ssh_support.keys_folder(settings) as keys:
        gate = ssh_support.site_gate(term_dirs / "gate", keys.parent, workstation_settings())
        with ssh_support.sshd(term_dirs / "sshd", first=gate.first) as server:
            yield server, gate.key


def as_site(server: ssh_support.SSHServer, key: Path, *command: str, **run: Any) -> subprocess.CompletedProcess[str]:
    return server.ssh("root", key, *command, **run)


def test_the_sites_key_runs_no_command_of_its_holders_on_the_workstation(
    workstation: tuple[ssh_support.SSHServer, Path], term_dirs: Path
) -> None:
    server, key = workstation
    planted = term_dirs / "planted"
    for command in (
        f"touch {planted}",
        f"rebench-gate status 1; touch {planted}",
        f"rebench-gate status $(touch {planted})",
        f"bash -c 'touch {planted}'",
        f"rebench-gate upload 1 x`touch {planted}`",
    ):
        result = as_site(server, key, command, input="")
        assert result.returncode != 0, (command, result)
        assert not planted.exists(), command
    said = as_site(server, key, "id", input="")
    assert said.stdout == ""
    assert "is not a verb" in said.stderr


def test_the_sites_key_gets_no_terminal_and_no_forwarding_into_the_hosts_network(
    workstation: tuple[ssh_support.SSHServer, Path],
) -> None:
    server, key = workstation
    interactive = as_site(server, key, tty=True, input="id\nexit\n", timeout=30)
    assert "uid=" not in interactive.stdout
    # A forward to the host's PostgreSQL through the site's key: sshd refuses it (`restrict`).
    port = ssh_support.free_port()
    forward = subprocess.Popen(
        server.argv("root", key, options=("-N", "-L", f"{port}:127.0.0.1:5432")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        answered = b""
        while time.monotonic() < deadline and not answered:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                    conn.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")  # PostgreSQL's SSLRequest
                    conn.settimeout(3)
                    answered = conn.recv(1) or b"closed"
            except (ConnectionRefusedError, TimeoutError):
                time.sleep(0.2)
            except OSError:
                answered = b"closed"
        assert answered in (b"", b"closed"), f"PostgreSQL answered {answered!r} through the site's key"
    finally:
        # On a loaded machine ssh took over 10 s to act on SIGTERM (a CI run): what it did is checked above.
        forward.terminate()
        try:
            forward.wait(10)
        except subprocess.TimeoutExpired:
            forward.kill()
            forward.wait()


def test_the_gates_verbs_take_whole_numbers_and_paths_inside_the_workspace_only(
    workstation: tuple[ssh_support.SSHServer, Path], attempt: Attempt
) -> None:
    server, key = workstation
    request = attempt_sandbox_request(attempt)
    sandbox_up(request)
    workspace = layout.workspace(attempt.pk)
    outside = workspace.parent / "escaped.txt"
    header = json.dumps({"sandbox": {}}) + "\n"
    for command in (
        f"rebench-gate upload {attempt.pk} ../escaped.txt",
        f"rebench-gate upload {attempt.pk} /etc/escaped.txt",
        f"rebench-gate upload {attempt.pk} a/../../escaped.txt",
    ):
        result = as_site(server, key, command, input=header + "written\n")
        assert result.returncode == 1, (command, result)
        assert "not a path inside the workspace" in result.stderr, result.stderr
    assert not outside.exists()
    assert not Path("/etc/escaped.txt").exists()
    for command, reason in (
        (f"rebench-gate download {attempt.pk} ../ 100000", "not a path inside the workspace"),
        ("rebench-gate status -1", "whole number"),
        (f"rebench-gate pull {attempt.pk} 1 -5", "whole number"),
        ("rebench-gate open '1;id' 1", "whole number"),
        (f"rebench-gate status {attempt.pk} extra", "takes 1 arguments"),
    ):
        result = as_site(server, key, command, input=header)
        assert result.returncode == 1, (command, result)
        assert reason in result.stderr, (command, result.stderr)
    # The site's own use of the same verbs works: what the refusals above are not.
    ok = as_site(server, key, f"rebench-gate upload {attempt.pk} inside.txt", input=header + "written\n")
    assert ok.returncode == 0, ok.stderr
    assert (workspace / "inside.txt").read_text() == "written\n"
