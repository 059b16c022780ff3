#!/usr/bin/env python3
"""Holds one terminal's PTY outside the attempt's sandbox, records it, and serves it to the web server.

Standard library only, one file: any python3 on a workstation runs it (as the terminal user, never the
attempt's). One holder per terminal; it outlives web-server restarts and dropped sockets, as a tmux
server did, but puts no terminal emulator between the shell and the browser: the shell's bytes go
to each attached client as they were read, and the browser's xterm.js is the only emulator.

    term_holder.py start --socket S [--spool F] [--cols C] [--rows R] [--replay-bytes N] -- ARGV...
    term_holder.py connect --socket S        (stdin/stdout <-> the holder: what an SSH channel runs)
    term_holder.py stop DIR                  (end every holder whose socket is in DIR)

`start` returns once the holder listens (at once if one already does); the holder runs ARGV (the
sandbox spawner's attach client) on the PTY, appends every byte it reads to the spool as asciicast
`o` events (exactly once, whoever is attached), keeps the last N bytes for a tab that attaches later,
and exits when the shell does.

Frames, both ways: a type byte, a 4-byte big-endian length, the payload.
  client -> holder: H hello (JSON {"readonly", "cols", "rows"}, first), I input, R resize (>HH cols rows)
  holder -> client: O output, X exit (JSON {"status"})
A client that attaches gets the screen back as bytes first: a reset, then the kept output from its
first whole line, then the private modes (cursor keys, bracketed paste, mouse, alternate screen) the
kept bytes don't set themselves, so keys and paste behave as they did.
"""

from __future__ import annotations

# Only what `start` needs before it listens is imported here: every new terminal waits for this
# process to start (json, re, selectors, subprocess, codecs and contextlib would double that), and
# the holder imports the rest after it has forked.
import fcntl
import os
import socket
import struct
import sys
import termios
import time

TYPE_CHECKING = False  # typing's own costs an import; mypy reads this name the same way
if TYPE_CHECKING:
    import subprocess

HEADER = struct.Struct(">BI")
HELLO, INPUT, RESIZE = b"H"[0], b"I"[0], b"R"[0]
OUTPUT, EXIT = b"O"[0], b"X"[0]
MAX_FRAME = 1024 * 1024
READ_BYTES = 64 * 1024
# A writing client's unsent output above this stops the holder reading the PTY (the shell blocks, as
# on a slow terminal) until it is down to a quarter: the web server's own window sits behind it.
WRITER_QUEUE = 256 * 1024
# A watcher (read-only) never holds the shell back: above this its backlog is dropped and it gets
# the screen again instead.
WATCHER_QUEUE = 1024 * 1024
RESYNC_BYTES = 64 * 1024
# A flood is read about 4 KB at a time; each read recorded and framed alone costs the holder about as
# much again as reading it. Output that comes while earlier output waits is batched: sent and
# recorded together (so never sent unrecorded) once BATCH_BYTES have gathered or BATCH_SECONDS have
# passed. A short read with nothing waiting (a keystroke's echo) goes at once.
BATCH_BYTES = 64 * 1024
BATCH_SECONDS = 0.005
SHORT_READ = 1024
DEFAULT_REPLAY = 1024 * 1024
RESET = b"\x1bc"
# Private modes a reattaching xterm.js must be in for keys, paste and the mouse to work as before.
MODES = (1, 25, 1000, 1002, 1003, 1006, 2004, 1049)
MODE_DEFAULTS = {25: True}
MODE_PATTERN = rb"\x1b\[\?([0-9;]+)([hl])"
# selectors' event bits, without importing it before the holder has forked.
EVENT_READ, EVENT_WRITE = 1, 2
ALT_SCREENS = {47, 1047, 1049}


class suppress:  # contextlib.suppress, without importing contextlib before the holder listens
    def __init__(self, *exceptions: type[BaseException]) -> None:
        self.exceptions = exceptions

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, value: object, traceback: object) -> bool:
        return kind is not None and issubclass(kind, self.exceptions)


def frame(kind: int, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


class Decoder:
    """Frames out of a byte stream, however it was cut."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buffer += data
        frames: list[tuple[int, bytes]] = []
        offset = 0
        while len(self.buffer) - offset >= HEADER.size:
            kind, length = HEADER.unpack_from(self.buffer, offset)
            if length > MAX_FRAME:
                raise ValueError(f"frame of {length} bytes")
            end = offset + HEADER.size + length
            if end > len(self.buffer):
                break
            frames.append((kind, bytes(self.buffer[offset + HEADER.size : end])))
            offset = end
        del self.buffer[:offset]
        return frames


def set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def get_size(fd: int) -> tuple[int, int]:
    rows, cols, _x, _y = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return cols, rows


def mode_changes(data: bytes) -> dict[int, bool]:
    """The private modes `data` sets or resets, each to its last value."""
    found: dict[int, bool] = {}
    import re

    for match in re.finditer(MODE_PATTERN, data):
        on = match.group(2) == b"h"
        for part in match.group(1).split(b";"):
            if part.isdigit():
                found[int(part)] = on
    return found


class Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.decoder = Decoder()
        self.out = bytearray()
        self.readonly = True
        self.ready = False  # said hello: output goes to it from now on


class Holder:
    def __init__(
        self, path: str, listener: socket.socket, master: int, child: subprocess.Popen[bytes], spool: str, replay: int
    ) -> None:
        self.path = path
        self.listener = listener
        self.master = master
        self.child = child
        self.replay_limit = replay
        self.ring = bytearray()
        self.trimmed = False
        self.modes: dict[int, bool] = {}
        self.clients: dict[int, Client] = {}
        self.pending_input = bytearray()
        self.batch = bytearray()
        self.batch_due: float | None = None
        self.reading = True
        import codecs
        import selectors

        self.selector = selectors.DefaultSelector()
        self.spool = os.open(spool, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600) if spool else -1
        self.text = codecs.getincrementaldecoder("utf-8")("replace")

    # --- the PTY -------------------------------------------------------------------------------

    def _master_events(self) -> int:
        return (EVENT_READ if self.reading else 0) | (EVENT_WRITE if self.pending_input else 0)

    def _update_master(self) -> None:
        events = self._master_events()
        try:
            key = self.selector.get_key(self.master)
        except KeyError:
            key = None
        if key is not None and not events:
            self.selector.unregister(self.master)
        elif key is None and events:
            self.selector.register(self.master, events, "master")
        elif key is not None and key.events != events:
            self.selector.modify(self.master, events, "master")

    def record(self, data: bytes, final: bool = False) -> None:
        import json

        if self.spool < 0:
            return
        text = self.text.decode(data, final=final)
        if text:
            os.write(self.spool, (json.dumps([round(time.time(), 6), "o", text]) + "\n").encode())

    def on_output(self, data: bytes) -> None:
        if not self.batch and len(data) < SHORT_READ:
            self.emit(data)
            return
        self.batch += data
        if self.batch_due is None:
            self.batch_due = time.monotonic() + BATCH_SECONDS
        if len(self.batch) >= BATCH_BYTES:
            self.emit_batch()

    def emit_batch(self) -> None:
        if self.batch:
            data = bytes(self.batch)
            self.batch.clear()
            self.emit(data)
        self.batch_due = None

    def emit(self, data: bytes) -> None:
        """Record `data`, keep it for the replay, and send it to every attached tab."""
        self.record(data)
        self.ring += data
        if len(self.ring) > 2 * self.replay_limit:  # trimmed now and then, not a memmove per read
            del self.ring[: len(self.ring) - self.replay_limit]
            self.trimmed = True
        if b"\x1b[?" in data:
            self.modes.update(mode_changes(data))
        message = frame(OUTPUT, data)
        for client in list(self.clients.values()):
            if client.ready:
                self.send(client, message)
        self._check_backpressure()

    def _check_backpressure(self) -> None:
        writers = [c for c in self.clients.values() if c.ready and not c.readonly]
        if self.reading and any(len(c.out) > WRITER_QUEUE for c in writers):
            self.reading = False
            self._update_master()
        elif not self.reading and all(len(c.out) <= WRITER_QUEUE // 4 for c in writers):
            self.reading = True
            self._update_master()

    def write_input(self, data: bytes) -> None:
        self.pending_input += data
        self.flush_input()

    def flush_input(self) -> None:
        while self.pending_input:
            try:
                written = os.write(self.master, self.pending_input)
            except BlockingIOError:
                break
            except OSError:
                self.pending_input.clear()
                break
            del self.pending_input[:written]
        self._update_master()

    # --- clients -------------------------------------------------------------------------------

    def screen(self, limit: int) -> bytes:
        """What a tab that attaches now is sent: a reset, the kept output from a whole line, the modes."""
        limit = min(limit, self.replay_limit)
        tail = bytes(self.ring[-limit:])
        if self.trimmed or len(self.ring) > limit:
            # The kept bytes begin mid-stream: from the first whole line, never inside a sequence.
            cut = tail.find(b"\n")
            tail = tail[cut + 1 :] if cut >= 0 else b""
        replayed = mode_changes(tail)
        suffix = b""
        for mode in MODES:
            if mode in replayed:
                continue  # the replay itself leaves xterm.js in the state it set
            state = self.modes.get(mode, MODE_DEFAULTS.get(mode, False))
            if state != MODE_DEFAULTS.get(mode, False):
                suffix += b"\x1b[?%d%s" % (mode, b"h" if state else b"l")
        return RESET + tail + suffix

    def accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        client = Client(sock)
        self.clients[sock.fileno()] = client
        self.selector.register(sock, EVENT_READ, client)

    def drop(self, client: Client) -> None:
        self.clients.pop(client.sock.fileno(), None)
        with suppress(KeyError, ValueError):
            self.selector.unregister(client.sock)
        client.sock.close()
        self._check_backpressure()

    def send(self, client: Client, message: bytes) -> None:
        if client.readonly and len(client.out) + len(message) > WATCHER_QUEUE:
            client.out.clear()  # a watcher that fell behind sees the screen as it is now instead
            message = frame(OUTPUT, self.screen(RESYNC_BYTES))
        was_empty = not client.out
        client.out += message
        self.flush(client)
        if was_empty and client.out:
            with suppress(KeyError, ValueError):
                self.selector.modify(client.sock, EVENT_READ | EVENT_WRITE, client)

    def flush(self, client: Client) -> None:
        while client.out:
            try:
                sent = client.sock.send(client.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.drop(client)
                return
            del client.out[:sent]
        with suppress(KeyError, ValueError):
            self.selector.modify(client.sock, EVENT_READ, client)

    def on_client(self, client: Client, mask: int) -> None:
        if mask & EVENT_WRITE:
            self.flush(client)
            if not self.reading:
                self._check_backpressure()
        if not mask & EVENT_READ or client.sock.fileno() < 0:
            return
        try:
            data = client.sock.recv(READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop(client)
            return
        try:
            frames = client.decoder.feed(data)
        except ValueError:
            self.drop(client)
            return
        for kind, payload in frames:
            self.on_frame(client, kind, payload)

    def on_frame(self, client: Client, kind: int, payload: bytes) -> None:
        import json

        if kind == HELLO and not client.ready:
            try:
                hello = json.loads(payload or b"{}")
            except ValueError:
                hello = {}
            client.readonly = bool(hello.get("readonly", True)) if isinstance(hello, dict) else True
            client.ready = True
            if not client.readonly and isinstance(hello, dict):
                self.resize(hello.get("cols"), hello.get("rows"))
            if self.ring:
                # Only once the shell has printed: keys a tab types on seeing its first output must
                # reach the shell, not the terminal before the shell has set it up (which drops them).
                self.send(client, frame(OUTPUT, self.screen(self.replay_limit)))
            if self.modes.get(1049) or self.modes.get(1047) or self.modes.get(47):
                self.redraw()
        elif kind == INPUT and client.ready and not client.readonly:
            self.write_input(payload)
        elif kind == RESIZE and client.ready and not client.readonly and len(payload) == 4:
            self.resize(*struct.unpack(">HH", payload))

    def resize(self, cols: object, rows: object) -> None:
        if isinstance(cols, int) and isinstance(rows, int) and 0 < cols < 10000 and 0 < rows < 10000:
            with suppress(OSError):
                if get_size(self.master) != (cols, rows):
                    set_size(self.master, cols, rows)

    def redraw(self) -> None:
        """A full-screen program redraws on SIGWINCH: two size changes send it one, from the kernel."""
        with suppress(OSError):
            cols, rows = get_size(self.master)
            set_size(self.master, cols, max(1, rows - 1))
            set_size(self.master, cols, rows)

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> int:
        import signal

        self.selector.register(self.listener, EVENT_READ, "listener")
        # SIGTERM (the attempt ended): record what the shell printed last, tell the tabs, exit.
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGTERM, lambda *_: None)
        self.selector.register(wake_read, EVENT_READ, "signal")
        self._update_master()
        while True:
            timeout = 1.0 if self.batch_due is None else max(0.0, self.batch_due - time.monotonic())
            for key, mask in self.selector.select(timeout=timeout):
                if key.data == "signal":
                    self.drain()
                    return self.finish(stopped=True)
                if key.data == "listener":
                    self.accept()
                elif key.data == "master":
                    if mask & EVENT_WRITE:
                        self.flush_input()
                    if mask & EVENT_READ:
                        try:
                            data = os.read(self.master, READ_BYTES)
                        except BlockingIOError:
                            continue
                        except OSError:
                            data = b""  # EIO: the shell and every other holder of its terminal are gone
                        if not data:
                            return self.finish()
                        self.on_output(data)
                else:
                    self.on_client(key.data, mask)
            if self.batch_due is not None and time.monotonic() >= self.batch_due:
                self.emit_batch()

    def drain(self) -> None:
        with suppress(OSError):
            while data := os.read(self.master, READ_BYTES):
                self.on_output(data)
        self.emit_batch()

    def finish(self, stopped: bool = False) -> int:
        import json
        import subprocess

        self.emit_batch()
        self.record(b"", final=True)
        with suppress(OSError):  # first: nobody attaches to a holder that is going
            os.unlink(self.path)
        if stopped:
            os.close(self.master)  # the attach client's terminal hangs up; the sandbox's stop ends the shell
        try:
            status = self.child.wait(timeout=1 if stopped else 5)
        except subprocess.TimeoutExpired:
            self.child.kill()
            status = self.child.wait()
        goodbye = frame(EXIT, json.dumps({"status": status}).encode())
        for client in list(self.clients.values()):
            client.sock.setblocking(True)
            with suppress(OSError):
                client.sock.settimeout(2)
                client.sock.sendall(bytes(client.out) + goodbye)
            client.sock.close()
        return status


# --- start, connect, stop --------------------------------------------------------------------------


def _address(path: str) -> str:
    """A socket address for `path`: a deep data folder can make it longer than an address may be, so
    then through an open descriptor of its folder (left open: this process needs it to the end)."""
    if len(os.fsencode(path)) <= 100:
        return path
    folder = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
    return f"/proc/self/fd/{folder}/{os.path.basename(path)}"


def _connectable(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(_address(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _controlling_tty() -> None:  # in the child, between fork and exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _serve(listener: socket.socket, options: dict[str, str], argv: list[str]) -> int:
    import subprocess

    master, slave = os.openpty()
    set_size(slave, int(options.get("cols", 80)), int(options.get("rows", 24)))
    env = dict(os.environ, TERM="xterm-256color")
    child = subprocess.Popen(  # noqa: S603 - the sandbox's attach client, named by the web server
        argv,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=_controlling_tty,
        close_fds=True,
        env=env,
        cwd="/",
    )
    os.close(slave)
    os.set_blocking(master, False)
    replay = int(options.get("replay-bytes", DEFAULT_REPLAY))
    holder = Holder(options["socket"], listener, master, child, options.get("spool", ""), replay)
    try:
        return holder.run()
    finally:
        path = options["socket"]
        with suppress(OSError):
            os.unlink(path)
        with suppress(OSError):
            os.unlink(path + ".pid")


def start(options: dict[str, str], argv: list[str]) -> int:
    path = options["socket"]
    lock = os.open(path + ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # two tabs opening one terminal at once start one holder
    if _connectable(path):
        print("running")
        return 0
    with suppress(FileNotFoundError):
        os.unlink(path)  # a holder that died (the machine restarted): its socket is stale
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    try:
        listener.bind(_address(path))
    finally:
        os.umask(old)
    listener.listen(16)
    listener.setblocking(False)
    if os.fork():
        listener.close()
        os.close(lock)
        print("started")
        return 0
    # The holder: a session of its own, detached from whoever started it, so it outlives them.
    import signal

    os.setsid()
    if os.fork():
        os._exit(0)
    os.close(lock)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with open(path + ".pid", "w") as pidfile:
        pidfile.write(str(os.getpid()))
    try:
        status = _serve(listener, options, argv)
    except BaseException:  # nobody is left to tell: the socket is gone and the tabs see the connection close
        status = 1
    os._exit(status & 0xFF)


def connect(options: dict[str, str]) -> int:
    """Splice stdin/stdout and the holder's socket: an SSH channel speaks the frames through this."""
    import selectors

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(_address(options["socket"]))
    except OSError as exc:
        sys.stderr.write(f"no terminal at {options['socket']}: {exc.strerror}\n")
        return 1
    selector = selectors.DefaultSelector()
    selector.register(0, EVENT_READ, "in")
    selector.register(sock, EVENT_READ, "sock")
    while True:
        for key, _mask in selector.select():
            if key.data == "in":
                data = os.read(0, READ_BYTES)
                if not data:
                    sock.shutdown(socket.SHUT_WR)
                    selector.unregister(0)
                    continue
                sock.sendall(data)
            else:
                data = sock.recv(READ_BYTES)
                if not data:
                    return 0
                view = memoryview(data)
                while view:
                    view = view[os.write(1, view) :]


def stop(directory: str) -> int:
    """The `stop` command: prints how many holders ran."""
    print(signal_holders(directory))
    return 0


def signal_holders(directory: str) -> int:
    """SIGTERM every holder in `directory`; their shells' terminals hang up. How many ran."""
    import signal

    ended = 0
    with suppress(FileNotFoundError):
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".pid"):
                continue
            try:
                with open(os.path.join(directory, name)) as pidfile:
                    pid = int(pidfile.read().strip() or 0)
            except (OSError, ValueError):
                continue
            if pid > 1:
                with suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGTERM)
                    ended += 1
    return ended


def _options(args: list[str]) -> tuple[dict[str, str], list[str]]:
    options: dict[str, str] = {}
    while args and args[0] != "--":
        if not args[0].startswith("--") or len(args) < 2:
            raise ValueError(f"bad argument {args[0]!r}")
        options[args[0][2:]] = args[1]
        args = args[2:]
    return options, args[1:]


def main(argv: list[str]) -> int:
    usage = (
        "usage: term_holder.py start --socket S [--spool F --cols C --rows R --replay-bytes N] -- ARGV"
        " | connect --socket S | stop DIR\n"
    )
    try:
        if argv[:1] == ["stop"] and len(argv) == 2:
            return stop(argv[1])
        options, rest = _options(argv[1:])
        if argv[:1] == ["start"] and "socket" in options and rest:
            return start(options, rest)
        if argv[:1] == ["connect"] and "socket" in options:
            return connect(options)
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
    sys.stderr.write(usage)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
