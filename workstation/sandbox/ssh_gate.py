"""The keeper's door for SSH sessions: sshd's forced command (rebench-ssh, as the attempt's user) asks here.

sshd starts the forced command as the attempt's user *outside* the sandbox; that command only
passes its descriptors and the requested command line to this socket (the attempt's group alone may
connect; it is not in the sandbox's view), and the keeper, root, decides:

- the attempt is paused, frozen, past its deadline or ended: refused, with the reason;
- a command session (`ssh host cmd`, scp, VS Code's server): the spawner runs the command with the
  attempt's shell inside the sandbox on pipes the keeper passes on, recording what goes through them
  to `ssh/session-<n>.out` (up to COMMAND_RECORD_BYTES); sftp gets the session's own descriptors
  (its bytes are files). Every command line is logged in `commands.log`;
- an interactive session: a terminal holder is started for it, as the terminal user, exactly like a
  browser tab's (its PTY's shell is started by the spawner inside, every byte it prints recorded
  to `ssh/session-<n>.out`), and the caller receives a connection to the holder.

Nothing the caller sends runs outside the sandbox.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import socket
import subprocess
import threading
import time
from typing import Any

from .lifecycle import frozen_reason
from .policy import CONTROL_FILE, SPAWN_SOCKET, SPAWNER, Policy
from .spawner import receive_request
from .state import read_json, unix_path

SSH_SOCKET = "ssh.sock"
SSH_DIR = "ssh"  # the terminal user's: the SSH sessions' holders, their sockets and recordings
COMMAND_LOG = "commands.log"
HOLDER_TOOL = "rebench-termhold"
MAX_REQUEST = 64 * 1024
MAX_COMMAND = 32 * 1024
# A command session's recording stops here: an `ssh host cat big.log` is not worth a disk.
COMMAND_RECORD_BYTES = 1024 * 1024
SFTP_SERVERS = ("sftp-server", "internal-sftp")
_commands = [0]  # command sessions running now (the keeper serves one attempt)
REASONS = {
    "ended": "the attempt has ended",
    "deadline": "the attempt's time is up",
    "unreachable": "the site can't reach this workstation; the attempt is paused",
}


def _send(connection: socket.socket, answer: dict[str, Any], fds: list[int] | None = None) -> None:
    data = [json.dumps(answer).encode()]
    with contextlib.suppress(OSError):
        if fds:
            connection.sendmsg(data, [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        else:
            connection.sendall(data[0])


def ssh_dir(policy: Policy) -> str:
    return os.path.join(policy.state_dir, SSH_DIR)


def prepare(policy: Policy) -> None:
    """The SSH sessions' folder: the terminal user's alone, as a browser terminal's holder folder is."""
    path = ssh_dir(policy)
    os.makedirs(path, mode=0o700, exist_ok=True)
    if os.path.islink(path) or not os.path.isdir(path):
        raise OSError(f"{path} is not a folder")
    if os.geteuid() == 0 and policy.relay_uid >= 0:
        os.chown(path, policy.relay_uid, policy.relay_gid, follow_symlinks=False)
    os.chmod(path, 0o700)


def _record_command(policy: Policy, command: str) -> None:
    line = json.dumps([round(time.time(), 6), "command", command]) + "\n"
    fd = os.open(
        os.path.join(policy.state_dir, COMMAND_LOG), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600
    )
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class _Recorder:
    """A command session's bytes as asciicast events (`o` what it printed, `i` what it was sent), up to a cap."""

    def __init__(self, path: str, limit: int) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        self.limit = limit
        self.count = 0
        self.lock = threading.Lock()

    def event(self, code: str, data: bytes) -> None:
        with self.lock:
            if self.count >= self.limit:
                return
            kept = data[: self.limit - self.count]
            self.count += len(kept)
            line = json.dumps([round(time.time(), 6), code, kept.decode("utf-8", errors="replace")]) + "\n"
            if self.count >= self.limit:
                line += json.dumps([round(time.time(), 6), "m", f"recording stopped after {self.limit} bytes"]) + "\n"
            with contextlib.suppress(OSError):
                os.write(self.fd, line.encode())

    def close(self) -> None:
        os.close(self.fd)


def _pump(source: int, target: int, recorder: _Recorder, code: str, stop: threading.Event | None = None) -> None:
    """Copy `source` to `target`, recording; then close both (the reader downstream sees the end)."""
    import select

    try:
        while True:
            if stop is not None:
                if stop.is_set():
                    break
                if not select.select([source], [], [], 0.2)[0]:
                    continue
            data = os.read(source, 65536)
            if not data:
                break
            recorder.event(code, data)
            view = memoryview(data)
            while view:
                view = view[os.write(target, view) :]
    except OSError:  # the session or the command went away: nothing more to pass
        pass
    finally:
        for fd in (source, target):
            with contextlib.suppress(OSError):
                os.close(fd)


def _spawn(policy: Policy, command: str, fds: list[int]) -> socket.socket:
    """Ask the spawner to run `command` on `fds` inside the sandbox; the connection its status comes back on."""
    spawner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with unix_path(os.path.join(policy.state_dir, SPAWN_SOCKET)) as address:
            spawner.connect(address)
        spawner.sendmsg(
            [json.dumps({"command": command}).encode()],
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))],
        )
    except OSError:
        spawner.close()
        raise
    return spawner


def _status(spawner: socket.socket) -> int:
    with spawner:
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := spawner.recv(4096):
                answer += chunk
    try:
        return int(json.loads(answer).get("status", 1))
    except (ValueError, AttributeError, TypeError):
        return 1


def _command(policy: Policy, connection: socket.socket, command: str, fds: list[int], lock: threading.Lock) -> None:
    """A command session. File transfers (sftp, whose bytes are files, not a session) get the session's own
    descriptors; any other command runs on pipes the keeper passes on, recording what goes through them."""
    _record_command(policy, command)
    if command.split(" ", 1)[0].endswith(SFTP_SERVERS):
        try:
            spawner = _spawn(policy, command, fds)
        except OSError as exc:
            _send(connection, {"error": f"the attempt's sandbox is not running ({exc.strerror})"})
            return
        finally:
            for fd in fds:
                os.close(fd)
        _send(connection, {"status": _status(spawner)})
        return
    with lock:
        folder = ssh_dir(policy)
        recorder = _Recorder(os.path.join(folder, f"session-{_next_number(folder)}.out"), COMMAND_RECORD_BYTES)
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    try:
        spawner = _spawn(policy, command, [stdin_r, stdout_w, stderr_w])
    except OSError as exc:
        for fd in (*fds, stdin_r, stdin_w, stdout_r, stdout_w, stderr_r, stderr_w):
            os.close(fd)
        recorder.close()
        _send(connection, {"error": f"the attempt's sandbox is not running ({exc.strerror})"})
        return
    for fd in (stdin_r, stdout_w, stderr_w):
        os.close(fd)
    stop = threading.Event()
    pumps = [
        threading.Thread(target=_pump, args=(fds[0], stdin_w, recorder, "i", stop), daemon=True),
        threading.Thread(target=_pump, args=(stdout_r, fds[1], recorder, "o"), daemon=True),
        threading.Thread(target=_pump, args=(stderr_r, fds[2], recorder, "o"), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    status = _status(spawner)
    for pump in pumps[1:]:  # what the command printed, to the end (a process it left running may hold them)
        pump.join()
    stop.set()
    pumps[0].join()
    recorder.close()
    _send(connection, {"status": status})


def _next_number(folder: str) -> int:
    taken = [
        int(name[len("session-") : -len(".out")])
        for name in os.listdir(folder)
        if name.startswith("session-") and name.endswith(".out") and name[len("session-") : -len(".out")].isdigit()
    ]
    return max(taken, default=0) + 1


def _as_terminal_user(policy: Policy) -> dict[str, Any]:
    if os.geteuid() == 0 and policy.relay_uid >= 0:
        return {"user": policy.relay_uid, "group": policy.relay_gid, "extra_groups": []}
    return {}


def _interactive(policy: Policy, connection: socket.socket, request: dict[str, Any], lock: threading.Lock) -> None:
    folder = ssh_dir(policy)
    with lock:  # two sessions opening at once get two numbers
        number = _next_number(folder)
        spool = os.path.join(folder, f"session-{number}.out")
        fd = os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        if os.geteuid() == 0 and policy.relay_uid >= 0:
            os.fchown(fd, policy.relay_uid, policy.relay_gid)
        os.close(fd)
    path = os.path.join(folder, f"session-{number}.sock")
    cols, rows = request.get("cols"), request.get("rows")
    size = [str(min(max(v, 5), 1000)) if isinstance(v, int) else d for v, d in ((cols, "80"), (rows, "24"))]
    tools = policy.tools_dir
    attach = [policy.python, "-I", "-S", os.path.join(tools, SPAWNER), "attach"]
    argv = [policy.python, "-I", "-S", os.path.join(tools, HOLDER_TOOL), "start", "--socket", path]
    argv += ["--spool", spool, "--cols", size[0], "--rows", size[1], "--"]
    argv += [*attach, os.path.join(policy.state_dir, SPAWN_SOCKET)]
    term = str(request.get("term") or "xterm-256color")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/", "LANG": "C.UTF-8", "TERM": term[:64]}
    result = subprocess.run(  # noqa: S603 - our holder, with arguments we build
        argv, capture_output=True, timeout=15, check=False, env=env, cwd="/", **_as_terminal_user(policy)
    )
    if result.returncode != 0:
        _send(connection, {"error": "the session's terminal could not start"})
        return
    holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with unix_path(path) as address:
            holder.connect(address)
        _send(connection, {"session": number}, [holder.fileno()])
    except OSError as exc:
        _send(connection, {"error": f"the session's terminal could not start ({exc.strerror})"})
    finally:
        holder.close()


def _live_sessions(policy: Policy) -> int:
    """Interactive sessions whose holders run (each leaves a pid file while it does), and running commands."""
    with contextlib.suppress(OSError):
        holders = sum(1 for name in os.listdir(ssh_dir(policy)) if name.endswith(".sock.pid"))
        return holders + _commands[0]
    return _commands[0]


def serve_one(policy: Policy, connection: socket.socket, lock: threading.Lock) -> None:
    with connection:
        try:
            request, fds = receive_request(connection, MAX_REQUEST)
        except OSError:
            return
        reason = frozen_reason(read_json(os.path.join(policy.state_dir, CONTROL_FILE)))
        command = request.get("command")
        refusal = ""
        if reason is not None:
            refusal = f"SSH access is closed: {REASONS.get(reason, f'the attempt is paused ({reason})')}."
        elif command is not None and (not isinstance(command, str) or len(fds) != 3 or len(command) > MAX_COMMAND):
            refusal = "bad request"
        elif _live_sessions(policy) >= policy.ssh_max_sessions:
            refusal = f"the attempt has {policy.ssh_max_sessions} SSH sessions open already; close one first."
        if refusal:
            for fd in fds:
                os.close(fd)
            _send(connection, {"error": refusal})
            return
        if isinstance(command, str):
            with lock:
                _commands[0] += 1
            try:
                _command(policy, connection, command, fds, lock)
            finally:
                with lock:
                    _commands[0] -= 1
            return
        for fd in fds:
            os.close(fd)
        try:
            _interactive(policy, connection, request, lock)
        except (OSError, subprocess.SubprocessError) as exc:
            _send(connection, {"error": f"the session's terminal could not start ({exc})"})


def stop_sessions(state_dir: str) -> int:
    """SIGTERM every SSH session's holder of the attempt (their shells hang up, sshd closes the session)."""
    import signal

    ended = 0
    folder = os.path.join(state_dir, SSH_DIR)
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for name in os.listdir(folder):
            if not name.endswith(".sock.pid"):
                continue
            with contextlib.suppress(OSError, ValueError), open(os.path.join(folder, name)) as handle:
                pid = int(handle.read().strip() or 0)
                if pid > 1:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGTERM)
                        ended += 1
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(state_dir, SSH_SOCKET))
    return ended


def serve(policy: Policy, listener: socket.socket) -> None:
    """Accept forever (a thread of the keeper): one thread per session request."""
    lock = threading.Lock()
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:
            continue
        threading.Thread(target=serve_one, args=(policy, connection, lock), daemon=True).start()
