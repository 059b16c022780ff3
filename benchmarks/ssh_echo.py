"""Keystroke echo through experts' SSH sessions, under load: the attempts' path against a plain sshd shell.

Used by benchmarks/workstations.py while its scoring load runs: each workstation host (a network
namespace) gets an OpenSSH sshd of its own with the project's drop-in (`manage.py
ssh_access_config`), and every attempt gets two interactive sessions through it from this machine,
as an expert's laptop would open them: one streaming output (a loop printing lines, as a training
run's log does) and one in which keys are typed one at a time and their echo timed. Beside each
attempt's typing session runs the peer: a session of a plain user of the same sshd on the same host
(a login shell with no forced command, no keeper, no holder, no sandbox), typed into the same way.
The figures: echo p50/p99 for each, and the ratio.

`python benchmarks/ssh_echo.py client SPEC SECONDS` is the typing side, a process of its own (one
selector loop over every session), so that the benchmark's own work doesn't delay the timings; it
prints its latencies as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import random
import selectors
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Before the test sshd's own lines (tests/ssh_access_support.py): 120 sessions opening at once, and the
# peer's user logging in with its own authorized_keys.
FIRST = "MaxStartups 200\nMaxSessions 100\nAuthorizedKeysFile .ssh/authorized_keys\n"
PLAIN_USER = "rbbench-plain"
STREAM_LOOP = "while :; do seq 1 40; sleep 0.2; done\n"
TYPE_EVERY = 0.25  # seconds between one session's keystrokes (with jitter)
CLIENT_OPTIONS = [
    "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20",
]  # fmt: skip


@dataclass
class Load:
    sshds: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)  # each host's, stopped on close
    attempt_ids: list[int] = field(default_factory=list)  # whose sandboxes this started
    client: subprocess.Popen[bytes] | None = None
    output: Path | None = None

    def wait_ready(self, timeout: float) -> str:
        """Until the client says its sessions are open (or gave up on the slow ones after 60 s): its line."""
        assert self.output is not None
        log = self.output.with_name("client.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                for line in log.read_text(errors="replace").splitlines():
                    if "sessions ready" in line:
                        return line
            if self.client is not None and self.client.poll() is not None:
                return "the client ended"
            time.sleep(0.5)
        return "not ready in time"

    def results(self, timeout: float) -> dict[str, Any]:
        assert self.client is not None
        assert self.output is not None
        try:
            self.client.wait(timeout)
        except subprocess.TimeoutExpired:
            self.client.kill()
            self.client.wait()
        with contextlib.suppress(ValueError, OSError):
            return dict(json.loads(self.output.read_text()))
        return {}

    def stop(self) -> None:
        """Everything it started: the client, each host's sshd, and the attempts' sandboxes and sessions (their
        keepers would outlive the run, and their cgroups pin the next run's attempts of the same ids)."""
        from workstation.backends.local import end_attempt_sync

        if self.client is not None and self.client.poll() is None:
            self.client.kill()
        self.sshds.close()
        for attempt_id in self.attempt_ids:
            try:
                end_attempt_sync(attempt_id)
            except Exception as exc:  # cleaning up: one attempt failing must not keep the rest
                print(f"attempt {attempt_id}'s sandbox did not stop: {exc!r}", file=sys.stderr)
        self.attempt_ids = []


def _plain_user(public_key: str) -> None:
    """A user with a login shell and the key in its own authorized_keys: the peer's sessions."""
    try:
        entry = pwd.getpwnam(PLAIN_USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", PLAIN_USER], check=True)
        entry = pwd.getpwnam(PLAIN_USER)
    subprocess.run(["usermod", "-p", "*", PLAIN_USER], check=True, capture_output=True)  # not locked: keys work
    folder = Path(entry.pw_dir) / ".ssh"
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / "authorized_keys").write_text(public_key + "\n")
    for path in (folder, folder / "authorized_keys"):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    (folder / "authorized_keys").chmod(0o600)


def start(hosts: list[Any], stations: list[Any], attempts: list[Any], seconds: float, work: Path) -> Load:
    """Each host's sshd, each attempt's key and running sandbox, then the typing client (in the background).
    What it started is stopped if it fails half-way."""
    load = Load()
    try:
        _start(load, hosts, stations, attempts, seconds, work)
    except BaseException:
        load.stop()
        raise
    return load


def _start(load: Load, hosts: list[Any], stations: list[Any], attempts: list[Any], seconds: float, work: Path) -> None:
    from tests import ssh_access_support as ssh_support
    from trials import selectors as trial_selectors
    from trials import services as trial_services
    from workstation import users
    from workstation.backends.local import sandbox_up

    folder = work / "ssh-client"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    private, public = ssh_support.make_key(folder, "expert")
    _plain_user(public)
    servers = [
        load.sshds.enter_context(
            ssh_support.sshd(work / f"sshd-{host.name}", address=host.address, wrap=tuple(host.argv()), first=FIRST)
        )
        for host in hosts
    ]
    by_station = {station.pk: servers[i] for i, station in enumerate(stations)}
    sessions = []
    for attempt in attempts:
        trial_services.ssh_key_add(user=attempt.user, public_key=public, name="bench")
        load.attempt_ids.append(attempt.pk)
        sandbox_up(
            trial_selectors.attempt_sandbox_request(attempt), trial_selectors.attempt_sandbox_control(attempt.pk)
        )
        host = by_station[attempt.workstation_id]
        login = users.attempt_user_name(attempt.pk)
        base = ["ssh", *CLIENT_OPTIONS, "-i", str(private), "-p", str(host.port), "-tt"]
        sessions.append({"kind": "stream", "argv": [*base, f"{login}@{host.address}"]})
        sessions.append({"kind": "ours", "argv": [*base, f"{login}@{host.address}"]})
        sessions.append({"kind": "plain", "argv": [*base, f"{PLAIN_USER}@{host.address}"]})
    spec = folder / "spec.json"
    spec.write_text(json.dumps(sessions))
    load.output = folder / "results.json"
    load.client = subprocess.Popen(
        [sys.executable, __file__, "client", str(spec), str(seconds), str(load.output)],
        stdout=(folder / "client.log").open("wb"),
        stderr=subprocess.STDOUT,
    )


# --- the typing client (a process of its own) ---------------------------------------------------------


@dataclass
class Session:
    kind: str
    process: subprocess.Popen[bytes]
    ready: bool = False
    seen: bytes = b""
    waiting: bytes = b""
    sent_at: float = 0.0
    next_at: float = 0.0
    typed: int = 0


def _open(kind: str, argv: list[str]) -> Session:
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return Session(kind, process)


def _write(session: Session, data: bytes) -> None:
    assert session.process.stdin is not None
    session.process.stdin.write(data)
    session.process.stdin.flush()


def client(spec_path: str, seconds: float, output: str) -> None:
    specs = json.loads(Path(spec_path).read_text())
    selector = selectors.DefaultSelector()
    sessions: list[Session] = []
    for index, spec in enumerate(specs):
        session = _open(spec["kind"], spec["argv"])
        assert session.process.stdout is not None
        os.set_blocking(session.process.stdout.fileno(), False)
        selector.register(session.process.stdout, selectors.EVENT_READ, session)
        sessions.append(session)
        if index % 6 == 5:
            time.sleep(0.3)  # sshd's MaxStartups and the keepers: not all at once
    latencies: dict[str, list[float]] = {"ours": [], "plain": []}
    failed = 0
    begin = time.monotonic()
    measuring_from = None
    letters = b"abcdefghijklmnopqrstuvwxyz"
    while True:
        now = time.monotonic()
        if measuring_from is None and (all(s.ready for s in sessions) or now - begin > 60):
            measuring_from = now + 2  # let the prompts settle
            print(f"{sum(s.ready for s in sessions)} of {len(sessions)} sessions ready", flush=True)
        if measuring_from is not None and now > measuring_from + seconds:
            break
        for key, _ in selector.select(0.005):
            session = key.data
            try:
                data = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            if not data:
                selector.unregister(key.fileobj)
                failed += 1
                print(f"a {session.kind} session ended: {session.seen[-300:]!r}", flush=True)
                continue
            arrived = time.monotonic()
            if not session.ready:
                session.seen += data
                if b"$ " in session.seen[-200:]:
                    session.ready = True
                    command = STREAM_LOOP if session.kind == "stream" else "exec cat > /dev/null\n"
                    _write(session, command.encode())
                    session.next_at = arrived + 1 + random.random()
                continue
            if session.waiting and session.waiting in data:
                latencies[session.kind].append((arrived - session.sent_at) * 1000)
                session.waiting = b""
        now = time.monotonic()
        if measuring_from is None or now < measuring_from:
            continue
        for session in sessions:
            if session.kind == "stream" or not session.ready or session.waiting or now < session.next_at:
                continue
            session.typed += 1
            if session.typed % 40 == 0:
                _write(session, b"\r")  # a line's end now and then: cat reads it, the echo is a newline
                session.next_at = now + 0.05
                continue
            letter = letters[session.typed % len(letters) : session.typed % len(letters) + 1]
            session.waiting, session.sent_at = letter, time.monotonic()
            _write(session, letter)
            session.next_at = now + TYPE_EVERY * (0.5 + random.random())
        for session in sessions:  # an echo lost (a session gone): give up on it after 5 s
            if session.waiting and now - session.sent_at > 5:
                session.waiting = b""
                failed += 1
    for session in sessions:
        with contextlib.suppress(OSError):
            session.process.kill()
    ready = {kind: sum(1 for s in sessions if s.kind == kind and s.ready) for kind in ("stream", "ours", "plain")}
    Path(output).write_text(json.dumps({"latencies": latencies, "failed": failed, "ready": ready}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        client(sys.argv[2], float(sys.argv[3]), sys.argv[4])
