"""A real OpenSSH sshd on a free loopback port, configured with the project's drop-in, and an OpenSSH client.

What a workstation runs for experts' SSH access: the host's own sshd with `manage.py
ssh_access_config`'s drop-in. The test server differs only where a test must: its port, host key,
pid file and keys folder are its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SSHD = "/usr/sbin/sshd"


@dataclass
class SSHServer:
    port: int
    root: Path
    log: Path
    address: str = "127.0.0.1"

    def argv(self, login: str, key: Path, *command: str, options: tuple[str, ...] = (), tty: bool = False) -> list[str]:
        """An OpenSSH client's command line for `login` with `key` here, with no config of the machine's."""
        return [
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            str(key),
            "-p",
            str(self.port),
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            *(["-tt"] if tty else ["-T"]),
            *options,
            f"{login}@{self.address}",
            *command,
        ]

    def ssh(
        self, login: str, key: Path, *command: str, options: tuple[str, ...] = (), tty: bool = False, **run: Any
    ) -> subprocess.CompletedProcess[str]:
        argv = self.argv(login, key, *command, options=options, tty=tty)
        run.setdefault("timeout", 60)
        if "input" not in run:
            run.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(argv, capture_output=True, text=True, check=False, **run)

    def tunnel_argv(self, login: str, key: Path, *arguments: str) -> list[str]:
        """An OpenSSH client reaching the attempt's sandbox through the tunnel, as the attempt page's
        `~/.ssh/config` sets VS Code up: a ProxyCommand that opens `rebench-tunnel` on the host's sshd."""
        common = ["-F", "/dev/null", "-i", str(key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]
        common += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        proxy = " ".join(["ssh", *common, "-p", str(self.port), "-T", f"{login}@{self.address}", "rebench-tunnel"])
        return ["ssh", *common, "-o", "ConnectTimeout=15", "-o", f"ProxyCommand={proxy}", "-T", *arguments]

    def through_tunnel(
        self, login: str, key: Path, *command: str, options: tuple[str, ...] = (), **run: Any
    ) -> subprocess.CompletedProcess[str]:
        run.setdefault("timeout", 60)
        if "input" not in run:
            run.setdefault("stdin", subprocess.DEVNULL)
        argv = self.tunnel_argv(login, key, *options, f"{login}@attempt-sandbox", *command)
        return subprocess.run(argv, capture_output=True, text=True, check=False, **run)

    def interactive(self, login: str, key: Path, typed: str, *, timeout: float = 30) -> str:
        """An interactive session (`ssh -tt`): wait for the shell's prompt, type `typed`, return all it printed
        once the session ends (typed-ahead input before the shell starts may be dropped by its line editor)."""
        import selectors

        argv = ["ssh", "-F", "/dev/null", "-i", str(key), "-p", str(self.port), "-o", "BatchMode=yes"]
        argv += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        process = subprocess.Popen(
            [*argv, "-tt", f"{login}@{self.address}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        output = b""
        sent = False
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not selector.select(0.2):
                    continue
                data = os.read(process.stdout.fileno(), 65536)
                if not data:
                    break
                output += data
                if not sent and b"$ " in output:
                    process.stdin.write(typed.encode())
                    process.stdin.flush()
                    sent = True
        if process.poll() is None:
            process.kill()
        process.wait()
        return output.decode(errors="replace")


def make_key(folder: Path, name: str) -> tuple[Path, str]:
    """A new ed25519 key pair in `folder`: the private key's path and the public key's line."""
    path = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
        check=True,
    )
    return path, (folder / f"{name}.pub").read_text().strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def keys_folder(settings: Any) -> Iterator[Path]:
    """SSH_ACCESS_KEYS_DIR in a root-owned folder whose every parent is root's and not writable by others,
    as sshd's StrictModes requires of an AuthorizedKeysFile (so never under /tmp)."""
    root = Path(tempfile.mkdtemp(prefix="rebench-ssh-test-", dir="/run"))
    root.chmod(0o755)
    settings.SSH_ACCESS_KEYS_DIR = root / "authorized"
    try:
        yield settings.SSH_ACCESS_KEYS_DIR
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def sshd(work: Path, *, address: str = "127.0.0.1", wrap: tuple[str, ...] = (), first: str = "") -> Iterator[SSHServer]:
    """The project's drop-in (from the current settings) under a test sshd_config; stopped afterwards.
    `address` is where it listens; `wrap` a command it runs under (`nsenter --net=…`: another host's);
    `first` lines put before the rest (sshd keeps a setting's first value)."""
    from workstation import ssh_access

    if not os.access(SSHD, os.X_OK):
        pytest.skip("OpenSSH's sshd is not installed (apt-get install openssh-server)")
    if os.geteuid() != 0:
        pytest.skip("sshd switches to the attempts' users: needs root")
    work.mkdir(parents=True, exist_ok=True)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    host_key = work / "host_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    dropin = work / "rebench.conf"
    dropin.write_text(ssh_access.sshd_config())
    port = free_port()
    log = work / "sshd.log"
    config = work / "sshd_config"
    config.write_text(
        f"""{first}Port {port}
ListenAddress {address}
HostKey {host_key}
PidFile {work}/sshd.pid
UsePAM no
StrictModes yes
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile none
LogLevel VERBOSE
Subsystem sftp /usr/lib/openssh/sftp-server
Include {dropin}
"""
    )
    check = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen([*wrap, SSHD, "-D", "-e", "-f", str(config)], stderr=log.open("wb"))
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
                break
            assert time.monotonic() < deadline, log.read_text()
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)
        yield SSHServer(port=port, root=work, log=log, address=address)
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
        if process.poll() is None:
            process.kill()
            process.wait()


@dataclass
class SiteGate:
    """The site's way into a test workstation, as the set-up makes it: its key, limited to the gate."""

    key: Path
    first: str  # sshd_config lines: root logs in by key, with a forced command only, from this keys file

    def known_hosts(self, servers: list[SSHServer], path: Path) -> Path:
        """The site's known_hosts at `path`, holding each server's host key (as `workstation_add` records it)."""
        lines = []
        for server in servers:
            kind, blob = (server.root / "host_ed25519.pub").read_text().split()[:2]
            lines.append(f"[{server.address}]:{server.port} {kind} {blob}\n")
        path.write_text("".join(lines))
        return path


def site_gate(folder: Path, keys_root: Path, environment: dict[str, str]) -> SiteGate:
    """The gate on a test workstation: its environment file (`environment`, as the set-up writes it),
    the wrapper the forced command runs, and root's authorized_keys holding the site's key's line.
    `keys_root` is a folder sshd's StrictModes accepts (keys_folder's parent)."""
    from django.conf import settings

    from workstation import setup

    folder.mkdir(parents=True, exist_ok=True)
    env_file = folder / "worker.env"
    env_file.write_text("".join(f"{setup._env_line(k, v)}\n" for k, v in sorted(environment.items())))
    wrapper = folder / "rebench-gate"
    wrapper.write_text(
        f"#!/bin/sh\ncd {settings.BASE_DIR} && exec {sys.executable} -m workstation.gate --env {env_file}\n"
    )
    wrapper.chmod(0o755)
    key, public = make_key(folder, "site")
    root_keys = keys_root / "root_keys"
    root_keys.write_text(setup.gate_key_line(" ".join(public.split()[:2]), str(wrapper)) + "\n")
    root_keys.chmod(0o600)
    return SiteGate(key=key, first=f"PermitRootLogin forced-commands-only\nAuthorizedKeysFile {root_keys}\n")
