"""The keeper's door for SSH sessions: sshd's forced command (rebench-ssh, as the attempt's user) asks here.

sshd starts the forced command as the attempt's user *outside* the sandbox; that command only
passes its descriptors and the requested command line to this socket (the attempt's group alone may
connect; it is not in the sandbox's view), and the keeper, root, decides:

- the attempt is paused, frozen, past its deadline or ended: refused, with the reason;
- a command session (`ssh host cmd`, scp, VS Code's server): the spawner runs the command with the
  attempt's shell inside the sandbox on pipes the keeper passes on, recording what goes through them
  to `ssh/session-<n>.out` (up to COMMAND_RECORD_BYTES); sftp gets the session's own descriptors
  (its bytes are files). Every command line is logged in `commands.log`;
- the tunnel (`rebench-tunnel`, an SSH client's ProxyCommand): an OpenSSH sshd in inetd mode, started by
  the spawner inside the sandbox as the attempt's user on pipes the keeper passes on, serves a second
  SSH hop whose port forwarding (VS Code Remote-SSH's) opens connections from inside the sandbox: its
  loopback, its sockets, nothing of the host's. Its bytes are another SSH session's ciphertext: it is
  logged (opened, closed), not recorded; it refuses terminals, so an interactive session is the recorded
  one; the keeper closes it when the attempt is paused or ends;
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
import shutil
import socket
import subprocess
import threading
import time
from typing import Any

from .lifecycle import frozen_reason
from .policy import CONTROL_FILE, HOME, RUN, SPAWN_SOCKET, SPAWNER, Policy
from .spawner import receive_request
from .state import read_json, unix_path, write_file

SSH_SOCKET = "ssh.sock"
SSH_DIR = "ssh"  # the terminal user's: the SSH sessions' holders, their sockets and recordings
COMMAND_LOG = "commands.log"
HOLDER_TOOL = "rebench-termhold"
MAX_REQUEST = 64 * 1024
MAX_COMMAND = 32 * 1024
# A command session's recording stops here: an `ssh host cat big.log` is not worth a disk.
COMMAND_RECORD_BYTES = 1024 * 1024
SFTP_SERVERS = ("sftp-server", "internal-sftp")
TUNNEL_COMMAND = "rebench-tunnel"
TUNNEL_DIR = "ssh"  # under the state folder's run/, which the sandbox sees read-only as RUN
TUNNEL_HOST_KEY = "host_ed25519"
TUNNEL_KEYS = "authorized_keys"
TUNNEL_CONFIG = "sshd_config"
TUNNEL_WATCH_SECONDS = 1.0  # how soon an open tunnel notices the attempt was paused or ended
# The inner hop's own key options: forwarding is what it is for; the rest stays off.
TUNNEL_KEY_OPTIONS = "no-agent-forwarding,no-X11-forwarding,no-user-rc,no-pty"
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


def _log_event(policy: Policy, kind: str, text: str) -> None:
    line = json.dumps([round(time.time(), 6), kind, text]) + "\n"
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


def _pump(source: int, target: int, recorder: _Recorder | None, code: str, stop: threading.Event | None = None) -> None:
    """Copy `source` to `target`, recording; then close both (the reader downstream sees the end). Each pump
    owns its two descriptors: nobody else closes them. With `stop`, it never waits on `source` longer than
    0.2 s before looking whether to give up."""
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
            if recorder is not None:
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


def _start_piped(
    policy: Policy, command: str, fds: list[int], recorder: _Recorder | None, *, stop_outputs: bool
) -> tuple[socket.socket, list[threading.Thread], threading.Event]:
    """Run `command` in the sandbox on pipes, pumped to and from the session's `fds` (which the pumps own
    from here on, and close; on an OSError they are closed here): the spawner's connection, the pumps
    (input, output, errors) and the event that stops them (the input's always; the outputs' too with
    `stop_outputs`, for a command that may be frozen and never close them)."""
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    try:
        spawner = _spawn(policy, command, [stdin_r, stdout_w, stderr_w])
    except OSError:
        for fd in (*fds, stdin_r, stdin_w, stdout_r, stdout_w, stderr_r, stderr_w):
            os.close(fd)
        raise
    for fd in (stdin_r, stdout_w, stderr_w):
        os.close(fd)
    stop = threading.Event()
    outputs_stop = stop if stop_outputs else None
    pumps = [
        threading.Thread(target=_pump, args=(fds[0], stdin_w, recorder, "i", stop), daemon=True),
        threading.Thread(target=_pump, args=(stdout_r, fds[1], recorder, "o", outputs_stop), daemon=True),
        threading.Thread(target=_pump, args=(stderr_r, fds[2], recorder, "o", outputs_stop), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    return spawner, pumps, stop


def _command(policy: Policy, connection: socket.socket, command: str, fds: list[int], lock: threading.Lock) -> None:
    """A command session. File transfers (sftp, whose bytes are files, not a session) get the session's own
    descriptors; any other command runs on pipes the keeper passes on, recording what goes through them."""
    _log_event(policy, "command", command)
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
    try:
        spawner, pumps, stop = _start_piped(policy, command, fds, recorder, stop_outputs=False)
    except OSError as exc:
        recorder.close()
        _send(connection, {"error": f"the attempt's sandbox is not running ({exc.strerror})"})
        return
    status = _status(spawner)
    for pump in pumps[1:]:  # what the command printed, to the end (a process it left running may hold them)
        pump.join()
    stop.set()
    pumps[0].join()
    recorder.close()
    _send(connection, {"status": status})


def _tunnel_keys(policy: Policy) -> bytes:
    """The attempt's authorized keys (the file root's workstation code writes from the control), as the
    inner hop's: the same keys, their own options."""
    lines = []
    with contextlib.suppress(OSError), open(policy.ssh_keys_file, encoding="ascii", errors="replace") as handle:
        for line in handle.read(256 * 1024).splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[0].startswith("restrict"):  # `restrict,pty <type> <blob>`
                lines.append(f"{TUNNEL_KEY_OPTIONS} {fields[1]} {fields[2]}\n")
    return "".join(lines).encode()


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tunnel_config(policy: Policy) -> str:
    """The inner sshd's configuration (paths as the sandbox sees them). It runs as the attempt's user, so it
    can grant nothing that user's shell lacks; what it must not do is leave the sandbox, and it can't."""
    folder = f"{RUN}/{TUNNEL_DIR}"
    env = {**policy.environment(), "HOME": HOME}
    setenv = " ".join(_quote(f"{key}={value}") for key, value in sorted(env.items()) if "\n" not in value)
    return f"""# The attempt's tunnel: an sshd inside the sandbox, started per connection (inetd mode).
HostKey {folder}/{TUNNEL_HOST_KEY}
AuthorizedKeysFile {folder}/{TUNNEL_KEYS}
AuthorizedKeysCommand none
# Root's files show as nobody's inside the sandbox's user namespace; they are read-only there.
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
AllowTcpForwarding local
AllowStreamLocalForwarding local
PermitOpen any
PermitListen none
GatewayPorts no
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
PermitUserRC no
PermitUserEnvironment no
PermitTTY no
PrintMotd no
PrintLastLog no
PidFile none
LogLevel ERROR
Subsystem sftp /usr/lib/openssh/sftp-server
SetEnv {setenv}
"""


def _tunnel_prepare(policy: Policy) -> str:
    """Write the inner hop's folder (host key kept, keys and configuration fresh); its configuration's path
    inside the sandbox. ValueError with the reason the tunnel can't open."""
    if not policy.ssh_tunnel:
        raise ValueError("this workstation doesn't offer the tunnel (SSH_ACCESS_TUNNEL is off)")
    if not policy.isolate:
        raise ValueError("the tunnel needs the attempt's sandbox, and this workstation runs attempts without one")
    keys = _tunnel_keys(policy)
    if not keys:
        raise ValueError("the attempt has no SSH keys")
    run_dir = os.path.join(policy.state_dir, "run")
    folder = os.path.join(run_dir, TUNNEL_DIR)
    os.makedirs(folder, mode=0o750, exist_ok=True)
    if os.path.islink(folder) or not os.path.isdir(folder):
        raise ValueError("the tunnel's folder is not a folder")
    root = os.geteuid() == 0
    if root:
        os.chown(folder, 0, policy.gid, follow_symlinks=False)
    os.chmod(folder, 0o750)  # noqa: S103 - the attempt's group reads it (inside, as the attempt's user); others nothing
    host_key = os.path.join(folder, TUNNEL_HOST_KEY)
    if not os.path.isfile(host_key):
        keygen = shutil.which("ssh-keygen", path="/usr/bin:/bin:/usr/local/bin") or "ssh-keygen"
        for stale in (host_key, host_key + ".pub"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stale)
        subprocess.run(  # noqa: S603 - OpenSSH's key generator, our arguments
            [keygen, "-q", "-t", "ed25519", "-N", "", "-C", policy.name,
             "-f", host_key],
            capture_output=True, timeout=30, check=True,
        )  # fmt: skip
    if root:  # the inner sshd, as the attempt's user, must own its host key (and nobody else read it)
        os.chown(host_key, policy.uid, policy.gid, follow_symlinks=False)
    os.chmod(host_key, 0o600)
    # Root's, the attempt's group reads them (inside, as the attempt's user).
    write_file(folder, TUNNEL_KEYS, keys, mode=0o640, uid=0, gid=policy.gid)
    write_file(folder, TUNNEL_CONFIG, tunnel_config(policy).encode(), mode=0o640, uid=0, gid=policy.gid)
    return f"{RUN}/{TUNNEL_DIR}/{TUNNEL_CONFIG}"


def _tunnel(policy: Policy, connection: socket.socket, fds: list[int]) -> None:
    """The tunnel: the sandbox's own sshd on pipes the keeper passes on (unrecorded: they carry another SSH
    session's ciphertext), until either side hangs up or the attempt is paused or ends. A paused sshd is
    frozen and would hold the session open: the keeper closes the session's side itself."""
    try:
        config = _tunnel_prepare(policy)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        for fd in fds:
            os.close(fd)
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _send(connection, {"error": f"The tunnel can't open: {why}."})
        return
    try:
        spawner, pumps, stop = _start_piped(
            policy, f"exec {policy.sshd} -i -e -f {config}", fds, None, stop_outputs=True
        )
    except OSError as exc:
        _send(connection, {"error": f"the attempt's sandbox is not running ({exc.strerror})"})
        return
    statuses: list[int] = []
    waiter = threading.Thread(target=lambda: statuses.append(_status(spawner)), daemon=True)
    waiter.start()
    _log_event(policy, "tunnel", "opened")
    reason: str | None = None
    while pumps[1].is_alive() and reason is None:  # the inner sshd's output ends when it does
        pumps[1].join(TUNNEL_WATCH_SECONDS)
        reason = frozen_reason(read_json(os.path.join(policy.state_dir, CONTROL_FILE)))
    stop.set()
    for pump in pumps:
        pump.join()
    waiter.join(0 if reason else 5)  # a frozen sshd answers when it is thawed, or killed with the attempt
    _log_event(policy, "tunnel", f"closed ({reason or 'the connection ended'})")
    if reason is not None:
        _send(connection, {"error": f"The tunnel closed: {REASONS.get(reason, f'the attempt is paused ({reason})')}."})
        return
    _send(connection, {"status": statuses[0] if statuses else 255})


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
                if command.strip() == TUNNEL_COMMAND:
                    _tunnel(policy, connection, fds)
                else:
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
