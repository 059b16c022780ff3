#!/usr/bin/env python3
"""sshd's forced command for an attempt's user (standard library only): the session goes into the attempt's sandbox.

    rebench-ssh --state-root DIR --name-prefix P --user-prefix U

sshd runs this as the attempt's user (`U<id>`), outside the sandbox, for every session. It runs
nothing the client asked for itself: it hands its descriptors and the requested command
(SSH_ORIGINAL_COMMAND) to the attempt's keeper (`DIR/P-a<id>/ssh.sock`), which refuses while the
attempt is paused or over, runs a command inside the sandbox on these descriptors, or answers an
interactive session with a connection to a terminal holder (recorded like a browser tab), whose
frames this process then passes to and from sshd's terminal.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import pwd
import selectors
import signal
import socket
import struct
import sys
import termios
import tty

# The holder's frames (term_holder.py): a type byte and a 4-byte length.
HELLO, INPUT, RESIZE = b"H"[0], b"I"[0], b"R"[0]
OUTPUT, EXIT = b"O"[0], b"X"[0]
HEADER = struct.Struct(">BI")
READ_BYTES = 65536
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


def _frame(kind: int, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def _options(argv: list[str]) -> dict[str, str]:
    options = {}
    for key, value in zip(argv[::2], argv[1::2], strict=False):
        if key.startswith("--"):
            options[key[2:]] = value
    return options


def _fail(message: str) -> int:
    sys.stderr.write(f"rebench: {message}\r\n")
    return 1


def _receive(connection: socket.socket) -> tuple[dict[str, object], list[int]]:
    fds = array.array("i")
    message, ancillary, _flags, _address = connection.recvmsg(65536, socket.CMSG_LEN(fds.itemsize))
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    try:
        answer = json.loads(message or b"{}")
    except ValueError:
        answer = {}
    return (answer if isinstance(answer, dict) else {}), list(fds)


def _size() -> tuple[int, int]:
    with contextlib.suppress(OSError):
        rows, cols, _x, _y = struct.unpack("HHHH", __import__("fcntl").ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
        if cols and rows:
            return cols, rows
    return 80, 24


def _interactive(holder: socket.socket) -> int:
    """Pass sshd's terminal to the holder and back until the shell exits."""
    cols, rows = _size()
    holder.sendall(_frame(HELLO, json.dumps({"readonly": False, "cols": cols, "rows": rows}).encode()))
    resized = [False]
    signal.signal(signal.SIGWINCH, lambda *_: resized.__setitem__(0, True))
    saved = termios.tcgetattr(0)
    tty.setraw(0)
    buffer = b""
    status = 0
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ, "in")
    selector.register(holder, selectors.EVENT_READ, "holder")
    try:
        while True:
            if resized[0]:
                resized[0] = False
                holder.sendall(_frame(RESIZE, struct.pack(">HH", *_size())))
            try:
                events = selector.select()
            except InterruptedError:
                continue
            for key, _mask in events:
                if key.data == "in":
                    data = os.read(0, READ_BYTES)
                    if not data:
                        return status
                    holder.sendall(_frame(INPUT, data))
                    continue
                data = holder.recv(READ_BYTES)
                if not data:
                    return status
                buffer += data
                while len(buffer) >= HEADER.size:
                    kind, length = HEADER.unpack_from(buffer)
                    if len(buffer) < HEADER.size + length:
                        break
                    payload, buffer = buffer[HEADER.size : HEADER.size + length], buffer[HEADER.size + length :]
                    if kind == OUTPUT:
                        view = memoryview(payload)
                        while view:
                            view = view[os.write(1, view) :]
                    elif kind == EXIT:
                        with contextlib.suppress(ValueError, AttributeError, TypeError):
                            status = int(json.loads(payload).get("status", 0)) & 0xFF
                        return status
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


def main(argv: list[str]) -> int:
    options = _options(argv)
    name = pwd.getpwuid(os.getuid()).pw_name
    prefix = options.get("user-prefix", "")
    if not prefix or not name.startswith(prefix) or not name[len(prefix) :].isdigit():
        return _fail("this account has no attempt.")
    attempt_id = int(name[len(prefix) :])
    state_dir = os.path.join(options.get("state-root", ""), f"{options.get('name-prefix', '')}-a{attempt_id}")
    command = os.environ.get("SSH_ORIGINAL_COMMAND")
    if command == "internal-sftp":  # sshd's own sftp server runs in sshd, outside: the sandbox runs OpenSSH's
        command = SFTP_SERVER
    interactive = command is None and os.isatty(0)
    gate = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    address = os.path.join(state_dir, "ssh.sock")
    try:
        if len(os.fsencode(address)) > 100:  # a deep data folder: through an open descriptor of its folder
            address = f"/proc/self/fd/{os.open(state_dir, os.O_PATH | os.O_DIRECTORY)}/ssh.sock"
        gate.connect(address)
    except OSError:
        return _fail(f"attempt {attempt_id}'s sandbox is not running: open its terminal on the attempt page once.")
    with gate:
        if interactive:
            cols, rows = _size()
            request = {"term": os.environ.get("TERM", "xterm-256color"), "cols": cols, "rows": rows}
            gate.sendall(json.dumps(request).encode())
        else:
            # No terminal: a command (a login shell when none was given), run on our own descriptors.
            request = {"command": command if command is not None else "exec bash -l"}
            gate.sendmsg(
                [json.dumps(request).encode()],
                [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]))],
            )
        answer, fds = _receive(gate)
    if "error" in answer:
        for fd in fds:
            os.close(fd)
        return _fail(str(answer["error"]))
    if interactive:
        if not fds:
            return _fail("the session's terminal could not start.")
        with socket.socket(fileno=fds[0]) as holder:
            return _interactive(holder)
    try:
        return int(str(answer.get("status", 1))) & 0xFF
    except ValueError:
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
