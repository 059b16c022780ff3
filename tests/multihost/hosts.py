"""Test hosts on one machine: network namespaces joined to this one by veth pairs, and TCP forwarders into them.

Each host is a namespace with its own address (10.<net>.<i>.2) whose only way out is its veth link
to this machine (10.<net>.<i>.1). The services this machine runs on loopback (PostgreSQL, Redis,
a live server) are out of its reach unless a forwarder listens on that link's address: a test
chooses what a host may reach by forwarding it, and cuts a host off by taking its link down.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field

import pytest


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def available() -> str | None:
    """Why test hosts can't be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None or shutil.which("nsenter") is None:
        return "iproute2's `ip` or util-linux's `nsenter` is not installed"
    return None


def _net() -> int:
    """A /16 of its own for each pytest worker (gw0 → 10.120.x.x, gw1 → 10.121.x.x, …)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw99")
    return 120 + int(worker.removeprefix("gw")) % 100


@dataclass
class Host:
    name: str
    index: int
    namespace: str = field(init=False)
    link: str = field(init=False)  # this machine's end of the veth pair
    address: str = field(init=False)
    gateway: str = field(init=False)

    def __post_init__(self) -> None:
        tag = f"{os.getpid() % 100000}{self.index}"
        self.namespace = f"rb-{self.name}-{tag}"
        self.link = f"rbh{tag}"[:15]
        net = _net()
        self.address = f"10.{net}.{self.index}.2"
        self.gateway = f"10.{net}.{self.index}.1"

    def up(self) -> Host:
        peer = f"rbw{self.link[3:]}"[:15]
        _ip("netns", "add", self.namespace)
        _ip("link", "add", self.link, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", self.namespace)
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.link)
        _ip("link", "set", self.link, "up")
        _ip("-n", self.namespace, "addr", "add", f"{self.address}/24", "dev", peer)
        _ip("-n", self.namespace, "link", "set", peer, "up")
        _ip("-n", self.namespace, "link", "set", "lo", "up")
        _ip("-n", self.namespace, "route", "add", "default", "via", self.gateway)
        return self

    def down(self) -> None:
        subprocess.run(["ip", "link", "del", self.link], capture_output=True, check=False, timeout=30)
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True, check=False, timeout=30)

    def cut(self) -> None:
        """The host's network goes: nothing crosses its link until restore()."""
        _ip("link", "set", self.link, "down")

    def restore(self) -> None:
        _ip("link", "set", self.link, "up")

    def argv(self, *command: str) -> list[str]:
        """`command`, run inside this host's network namespace.

        nsenter, not `ip netns exec`: that one also remounts /sys for the namespace, which hides the
        cgroup hierarchies the sandbox needs. The hosts share this machine's filesystem and users.
        """
        return ["nsenter", f"--net=/run/netns/{self.namespace}", *command]

    def connect(self, address: str, port: int) -> str:
        """What a TCP connection from this host to address:port meets: "connected", "refused" or "unreachable"."""
        probe = (
            "import socket, sys\n"
            "s = socket.socket(); s.settimeout(3)\n"
            f"try:\n    s.connect(({address!r}, {port})); print('connected')\n"
            "except ConnectionRefusedError:\n    print('refused')\n"
            "except OSError:\n    print('unreachable')\n"
        )
        result = subprocess.run(self.argv(sys.executable, "-c", probe), capture_output=True, text=True, timeout=30)
        return result.stdout.strip() or result.stderr.strip()


class Forwarder:
    """Listens on (address, port) of this machine and relays each connection to (to_host, to_port)."""

    def __init__(self, address: str, to_host: str, to_port: int) -> None:
        self.target = (to_host, to_port)
        self.server = socket.create_server((address, 0))
        self.port = self.server.getsockname()[1]
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed.set()
        self.server.close()


ROOT_AND_IP = pytest.mark.skipif(available() is not None, reason=available() or "")
