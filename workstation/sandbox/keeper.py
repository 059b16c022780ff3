"""The keeper: one daemon per attempt, outside its sandbox: keeps it running, relays `task`, enforces the clock.

It runs as root on this machine (the SSH user on an SSH workstation) and needs nothing from the
server after it starts: the last control the server wrote (a pause, the deadline, the slot's hard
stop) is enough to freeze the sandbox at the right moment with the server, the broker and the
worker all down. The relay runs in a child process as the relay user: the only way from inside the
sandbox to the site, limited to this attempt's own API paths, with the attempt's token added here
(the token is never inside the sandbox).
"""

from __future__ import annotations

import contextlib
import ctypes
import encodings.idna  # noqa: F401 - host names are looked up after the relay drops its privileges
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
from typing import Any
from urllib.parse import urlsplit

from . import (
    API_SOCKET,
    CONTROL_FILE,
    KEEPER_PID,
    POLICY_FILE,
    SPAWN_SOCKET,
    SPAWNER,
    STATUS_FILE,
    TOKEN_FILE,
    TOOLS,
    WORK,
    Policy,
    bwrap_argv,
    enforce,
    frozen_reason,
    hierarchy_for,
    next_change,
    preexec,
    prepare_cgroup,
    read_json,
    ssh_gate,
    unix_path,
    write_file,
)

TICK_SECONDS = 0.5
# A server's control holds the lock for one cgroup write; past this the tick goes on with what the file says.
ENFORCE_LOCK_SECONDS = 2.0
RESTART_BACKOFF_SECONDS = 1.0
HEAD_LIMIT = 16 * 1024
BODY_LIMIT = 1024 * 1024
RELAY_TIMEOUT_SECONDS = 60.0
# The environment's model answers in its own time (a long completion takes minutes).
MODEL_RELAY_TIMEOUT_SECONDS = 600.0
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
# Paths and queries the relay passes on: plain characters only, so nothing can climb out of the
# attempt's prefix by encoding or dot segments.
SAFE_PATH = re.compile(r"^/[A-Za-z0-9_\-/]*$")
SAFE_QUERY = re.compile(r"^[A-Za-z0-9_\-=&.%]*$")
PASSED_HEADERS = frozenset({"content-type", "content-length", "accept"})


def _log(message: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} keeper {os.getpid()}: {message}\n")
    sys.stderr.flush()


def _socket(path: str, *, uid: int, gid: int, mode: int = 0o660) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with unix_path(path) as address:
        listener.bind(address)
    os.chmod(path, mode)
    if os.geteuid() == 0:
        os.chown(path, uid, gid)
    listener.listen(64)
    return listener


# --- the relay -------------------------------------------------------------------------------------


def _answer(connection: socket.socket, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    head = f"HTTP/1.1 {status} Relay\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    with contextlib.suppress(OSError):
        connection.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)


def _read_head(connection: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(4096)
        if not chunk:
            raise ValueError("the request ended before its headers did")
        data += chunk
        if len(data) > HEAD_LIMIT:
            raise ValueError("request headers too large")
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def relay_one(connection: socket.socket, *, state_dir: str, upstream: str, prefix: str) -> None:
    """One `task` call: checked against the attempt's prefix, the token added, sent on, the answer streamed back."""
    connection.settimeout(RELAY_TIMEOUT_SECONDS)
    try:
        head, rest = _read_head(connection)
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        path, _, query = target.partition("?")
        if method not in METHODS:
            raise PermissionError(f"method {method} is not relayed")
        if not SAFE_PATH.match(path) or ".." in path or "//" in path or not path.startswith(prefix):
            raise PermissionError(f"only {prefix}… is reachable from the sandbox")
        if query and not SAFE_QUERY.match(query):
            raise PermissionError("the query has characters the relay doesn't pass")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() in PASSED_HEADERS:
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        if length < 0 or length > BODY_LIMIT:
            raise ValueError(f"request body over {BODY_LIMIT} bytes")
        body = rest
        while len(body) < length:
            chunk = connection.recv(min(65536, length - len(body)))
            if not chunk:
                raise ValueError("the request body ended early")
            body += chunk
        body = body[:length]
    except PermissionError as exc:
        _answer(connection, 403, str(exc))
        return
    except (ValueError, OSError, UnicodeError) as exc:
        _answer(connection, 400, f"bad request: {exc}")
        return
    try:
        with open(os.path.join(state_dir, TOKEN_FILE)) as handle:
            token = handle.read().strip()
    except OSError:
        _answer(connection, 503, "the terminal has no API credential yet; open the terminal again")
        return
    site = urlsplit(upstream)
    port = site.port or (443 if site.scheme == "https" else 80)
    base = site.path.rstrip("/")
    out_head = f"{method} {base}{path}{'?' + query if query else ''} HTTP/1.1\r\nHost: {site.netloc}\r\n"
    out_head += f"Authorization: Attempt {token}\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
    for name, value in headers.items():
        if name != "content-length":
            out_head += f"{name}: {value}\r\n"
    try:
        wait = MODEL_RELAY_TIMEOUT_SECONDS if path.startswith(prefix + "model/") else RELAY_TIMEOUT_SECONDS
        remote = socket.create_connection((site.hostname or "127.0.0.1", port), timeout=wait)
        if site.scheme == "https":
            remote = ssl.create_default_context().wrap_socket(remote, server_hostname=site.hostname)
        with remote:
            remote.sendall(out_head.encode("latin-1") + b"\r\n" + body)
            connection.sendall(_closing(remote))
            while chunk := remote.recv(65536):
                connection.sendall(chunk)
    except OSError as exc:
        _answer(connection, 502, f"the site at {upstream} can't be reached from the workstation: {exc}")


def _closing(remote: socket.socket) -> bytes:
    """The answer's head (and what came with it) saying `Connection: close`, as the relay closes after one.

    Without it an HTTP/1.1 client (openai's httpx) keeps the connection for its next request, which
    then meets a closed socket.
    """
    data = b""
    while b"\r\n\r\n" not in data and len(data) <= HEAD_LIMIT:
        chunk = remote.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, separator, rest = data.partition(b"\r\n\r\n")
    if not separator:
        return data
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + rest


def relay(listener: socket.socket, state_dir: str, upstream: str, prefix: str) -> None:
    while True:
        connection, _ = listener.accept()

        def serve(conn: socket.socket = connection) -> None:
            with conn:
                relay_one(conn, state_dir=state_dir, upstream=upstream, prefix=prefix)

        threading.Thread(target=serve, daemon=True).start()


def _start_relay(policy: Policy, listener: socket.socket) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if os.geteuid() == 0 and policy.relay_uid >= 0:
                os.setgroups([])
                os.setgid(policy.relay_gid)
                os.setuid(policy.relay_uid)
            # Everything it needs is imported above: after the switch it may not read this Python's files.
            with contextlib.suppress(OSError):
                ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: dies with the keeper
            relay(listener, policy.state_dir, policy.api_url, policy.api_prefix)
        except BaseException:  # the relay's last words go to the keeper's log
            traceback.print_exc()
        finally:
            os._exit(1)
    return pid


# --- the spawner --------------------------------------------------------------------------------


def _start_spawner(policy: Policy, listener: socket.socket) -> subprocess.Popen[bytes]:
    fd = listener.fileno()
    pairs = [(int(port), str(path)) for port, path in policy.bridges]
    if policy.model_port:
        # The environment's model: the attempt's own relay, which signs each request with its token.
        pairs.append((int(policy.model_port), os.path.join(policy.state_dir, "run", API_SOCKET)))
    bridges = []
    for port, _path in pairs:
        bridges += ["--bridge", f"{port}=/run/bridges/{port}.sock"]
    command = [policy.python, f"{TOOLS}/{SPAWNER}", "serve", str(fd), *bridges]
    if policy.isolate:
        binds = [(path, f"/run/bridges/{port}.sock") for port, path in pairs]
        argv = bwrap_argv(policy, command, ro_binds=binds, new_session=True, api=True)
    else:
        argv = [policy.python, os.path.join(policy.tools_dir, SPAWNER), "serve", str(fd)]
    env = policy.environment()
    if not policy.isolate:
        env["HOME"] = policy.workspace
        env["PATH"] = f"{policy.tools_dir}:/usr/local/bin:/usr/bin:/bin"
        env["REBENCH_API_SOCKET"] = os.path.join(policy.state_dir, "run", API_SOCKET)
    return subprocess.Popen(  # noqa: S603 - bubblewrap around our spawner
        argv,
        env=env,
        cwd="/" if policy.isolate else policy.workspace,
        pass_fds=[fd],
        stdin=subprocess.DEVNULL,
        preexec_fn=preexec(policy, policy.cgroup(WORK) if policy.cgroups else None),
    )


def run(state_dir: str) -> int:
    policy = Policy.from_json(read_json(os.path.join(state_dir, POLICY_FILE)))
    write_file(state_dir, KEEPER_PID, str(os.getpid()).encode(), mode=0o644)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    hierarchy = hierarchy_for(policy)
    if hierarchy is not None:
        prepare_cgroup(hierarchy, policy)
        hierarchy.create(policy.cgroup(WORK))
    run_dir = os.path.join(state_dir, "run")
    os.makedirs(run_dir, exist_ok=True)
    os.chmod(run_dir, 0o750)  # noqa: S103 - the attempt's group reaches the relay's socket; others nothing
    if os.geteuid() == 0:
        os.chown(run_dir, 0, policy.gid)
    spawn = _socket(os.path.join(state_dir, SPAWN_SOCKET), uid=0, gid=policy.connector_gid)
    api = _socket(os.path.join(run_dir, API_SOCKET), uid=0, gid=policy.gid)
    relay_pid = _start_relay(policy, api)
    api.close()
    # sshd's forced command, as the attempt's user, asks for its sessions here (ssh_gate.py).
    ssh_gate.prepare(policy)
    gate = _socket(os.path.join(state_dir, ssh_gate.SSH_SOCKET), uid=0, gid=policy.gid)
    threading.Thread(target=ssh_gate.serve, args=(policy, gate), daemon=True).start()
    spawner: subprocess.Popen[bytes] | None = None
    last_start = 0.0
    last_status: dict[str, Any] = {}
    _log(f"keeping {policy.name} (attempt {policy.attempt_id})")
    while not stopping:
        try:
            control, reason = enforce(state_dir, policy, hierarchy, timeout=ENFORCE_LOCK_SECONDS)
        except Exception as exc:  # a cgroup write failing must not end the keeper: try again next tick
            control = read_json(os.path.join(state_dir, CONTROL_FILE))
            reason = frozen_reason(control)
            _log(f"could not apply {reason!r}: {exc}")
        if control.get("ended"):
            break
        if (spawner is None or spawner.poll() is not None) and time.monotonic() - last_start > RESTART_BACKOFF_SECONDS:
            if spawner is not None:
                _log(f"the spawner exited ({spawner.returncode}); starting a new one")
            last_start = time.monotonic()
            spawner = _start_spawner(policy, spawn)
        status = {
            "ready": spawner is not None and spawner.poll() is None,
            "frozen": reason,
            "spawner": spawner.pid if spawner else None,
            "keeper": os.getpid(),
            "relay": relay_pid,
            "cgroup": policy.cgroup() if hierarchy is not None else "",
            "cgroup_version": hierarchy.version if hierarchy is not None else 0,
            "isolated": policy.isolate,
        }
        if status != last_status:
            write_file(state_dir, STATUS_FILE, json.dumps({**status, "since": time.time()}).encode(), mode=0o644)
            last_status = status
        wake = next_change(control)
        time.sleep(max(0.01, min(TICK_SECONDS, wake - time.time())) if wake else TICK_SECONDS)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(relay_pid, os.WNOHANG)
    _log("stopping")
    with contextlib.suppress(ProcessLookupError):
        os.kill(relay_pid, signal.SIGKILL)
    return 0
