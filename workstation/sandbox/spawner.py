#!/usr/bin/env python3
"""Shells inside an attempt's sandbox, for terminals held outside it (standard library only, one file).

Three roles, one protocol:

- `serve FD`: runs inside the sandbox as the attempt's user, as the sandbox's first process. It
  accepts on the listening socket it inherited (made outside by the keeper, never visible inside),
  and for each connection starts a shell on the terminal the client passes (SCM_RIGHTS), in the
  sandbox's namespaces and cgroup, then answers with the shell's exit status.
- `attach SOCKET`: the command a terminal's holder runs on its PTY, outside the sandbox, as the
  terminal user. It gives its terminal up (so the shell can make it its own controlling terminal),
  passes it to the spawner and exits with the shell's status. The holder keeps the terminal's other
  side: it records it and passes it to the browser, out of the shell's reach.
- a command request (`{"command": "..."}` with three descriptors: stdin, stdout, stderr): an SSH
  session without a terminal (`ssh host cmd`, scp, sftp, VS Code's server) handed in by the keeper;
  the command runs under the attempt's shell (`bash -c`) inside, on those descriptors.
- `run [--bridge PORT=SOCKET ...] -- ARGV`: inside a sandbox, reach services outside it: each bridge
  listens on 127.0.0.1:PORT of the sandbox's own loopback and forwards to a Unix socket bound in
  (an environment's LLM proxy, a judge); then ARGV runs and its status is this command's.

A shell's environment is the spawner's own (set by whoever built the sandbox) plus TERM and the
terminal's number from the client: nothing else crosses from outside.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import json
import os
import signal
import socket
import sys
import termios
import time
from typing import Any

MAX_MESSAGE = 16 * 1024
CONNECT_SECONDS = 15.0
TERM_NAMES = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-+.")


def receive_request(connection: socket.socket, limit: int = MAX_MESSAGE) -> tuple[dict[str, Any], list[int]]:
    """One JSON request of at most `limit` bytes and the descriptors passed with it (SCM_RIGHTS); a request
    that isn't a JSON object is an empty one. The keeper's SSH gate reads its sessions' requests so too."""
    fds = array.array("i")
    message, ancillary, _flags, _address = connection.recvmsg(limit, socket.CMSG_LEN(4 * fds.itemsize))
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    try:
        request = json.loads(message or b"{}")
    except ValueError:
        request = {}
    return (request if isinstance(request, dict) else {}), list(fds)


def _shell_env(request: dict[str, object]) -> dict[str, str]:
    env = dict(os.environ)
    term = str(request.get("term") or "xterm-256color")
    env["TERM"] = term if set(term) <= TERM_NAMES and len(term) < 64 else "xterm-256color"
    terminal = request.get("terminal")
    if isinstance(terminal, int):
        env["REBENCH_TERMINAL"] = str(terminal)
    env.pop("REBENCH_SPAWNER_SHELL", None)
    return env


def _start_shell(tty: int, env: dict[str, str]) -> int:
    return _start(env, [tty, tty, tty], None, terminal=True)


def _start(env: dict[str, str], stdio: list[int], command: str | None, *, terminal: bool) -> int:
    shell = os.environ.get("REBENCH_SPAWNER_SHELL", "/bin/bash")
    pid = os.fork()
    if pid == 0:  # the child: a new session, whose controlling terminal is the pane's when it has one
        try:
            os.setsid()
            if terminal:
                fcntl.ioctl(stdio[0], termios.TIOCSCTTY, 0)
            for target, fd in enumerate(stdio):
                os.dup2(fd, target)
            os.closerange(3, 65536)
            for number in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGPIPE):
                signal.signal(number, signal.SIG_DFL)
            with contextlib.suppress(OSError):
                os.chdir(env.get("HOME", "/"))
            argv = [shell] if command is None else [shell, "-c", command]
            os.execve(shell, argv, env)  # noqa: S606 - the expert's login shell, by design
        finally:
            os._exit(127)
    return pid


def _serve_one(connection: socket.socket) -> None:
    with connection:
        request, fds = receive_request(connection)
        if not fds:
            connection.sendall(b'{"error": "no terminal passed"}')
            return
        command = request.get("command")
        if isinstance(command, str) and len(fds) == 3:
            try:
                pid = _start(_shell_env(request), fds, command, terminal=False)
            finally:
                for fd in fds:
                    os.close(fd)
        else:
            tty, extra = fds[0], fds[1:]
            for fd in extra:
                os.close(fd)
            try:
                pid = _start_shell(tty, _shell_env(request))
            finally:
                os.close(tty)
        _pid, status = os.waitpid(pid, 0)
        with contextlib.suppress(OSError):
            connection.sendall(json.dumps({"status": os.waitstatus_to_exitcode(status)}).encode())


def serve(listen_fd: int, bridges: list[tuple[int, str]]) -> int:
    """Accept forever: one thread per terminal, which waits for its shell."""
    import threading  # here, not at the top: the attach client, which every new tab starts, needs none

    for port, path in bridges:
        _start_bridge(port, path)
    listener = socket.socket(fileno=listen_fd)
    os.set_inheritable(listen_fd, False)
    while True:
        try:
            connection, _ = listener.accept()
        except InterruptedError:
            continue
        threading.Thread(target=_serve_one, args=(connection,), daemon=True).start()


def attach(path: str, terminal: int | None) -> int:
    """Hand this pane's terminal to the spawner and wait for the shell on it to exit."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + CONNECT_SECONDS
    # A deep data folder can make the path longer than a socket address may be: connect through an
    # open descriptor of its folder (this file runs alone, so workstation.sandbox.unix_path's twin).
    address = path
    if len(os.fsencode(path)) > 100:
        with contextlib.suppress(OSError):  # no folder: connect says so below
            address = (
                f"/proc/self/fd/{os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)}/{os.path.basename(path)}"
            )
    while True:
        try:
            client.connect(address)
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                sys.stderr.write(f"The attempt's sandbox is not running ({exc.strerror}); reopen the terminal.\r\n")
                return 1
            time.sleep(0.2)
    # Give the terminal up: a terminal is the controlling terminal of one session only, and the
    # shell's session is inside the sandbox. Giving it up hangs up this process's group: ignored.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        fcntl.ioctl(0, termios.TIOCNOTTY)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    request = {"term": os.environ.get("TERM", "xterm-256color"), "terminal": terminal}
    client.sendmsg([json.dumps(request).encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0]))])
    answer = b""
    with contextlib.suppress(OSError):
        while chunk := client.recv(4096):
            answer += chunk
    try:
        return int(json.loads(answer).get("status", 1)) & 0xFF
    except (ValueError, AttributeError):
        return 1


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def _forward(connection: socket.socket, path: str) -> None:
    import threading

    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(path)
    except OSError:
        connection.close()
        upstream.close()
        return
    back = threading.Thread(target=_pipe, args=(upstream, connection), daemon=True)
    back.start()
    _pipe(connection, upstream)
    back.join()
    connection.close()
    upstream.close()


def _start_bridge(port: int, path: str) -> None:
    import threading

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)

    def accept() -> None:
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=_forward, args=(connection, path), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


def _bridges(values: list[str]) -> list[tuple[int, str]]:
    out = []
    for value in values:
        port, _, path = value.partition("=")
        out.append((int(port), path))
    return out


def run(bridges: list[tuple[int, str]], argv: list[str]) -> int:
    import subprocess

    for port, path in bridges:
        _start_bridge(port, path)
    return subprocess.call(argv)  # noqa: S603 - the sandboxed command we were given


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "serve":
        bridges = _bridges([v for k, v in zip(argv[2::2], argv[3::2], strict=False) if k == "--bridge"])
        return serve(int(argv[1]), bridges)
    if len(argv) >= 2 and argv[0] == "attach":
        terminal = int(argv[2]) if len(argv) > 2 and argv[2].isdigit() else None
        return attach(argv[1], terminal)
    if argv and argv[0] == "run" and "--" in argv:
        split = argv.index("--")
        options = argv[1:split]
        bridges = _bridges([v for k, v in zip(options[::2], options[1::2], strict=False) if k == "--bridge"])
        return run(bridges, argv[split + 1 :])
    sys.stderr.write(
        "usage: spawner.py serve FD [--bridge PORT=SOCKET]... | attach SOCKET [N] | run [--bridge ...] -- ARGV\n"
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
