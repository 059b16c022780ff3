"""The terminal holder on a real PTY and a real bash: replay, recording, flow control, watchers, endings.

The holder is started as the web server starts it (its `start` command) with bash in place of the
sandbox's attach client, and spoken to over its socket frame by frame.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from workstation.tools import term_holder as th

TOOL = Path(th.__file__)
PROMPT = b"HELD$ "
BASH = ["/bin/bash", "--norc", "--noprofile", "-i"]

pytestmark = pytest.mark.timeout(60)


class Tab:
    """One client of the holder: frames out, output frames collected."""

    def __init__(self, path: Path, *, readonly: bool = False, cols: int = 80, rows: int = 24) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.decoder = th.Decoder()
        self.output = bytearray()
        self.exit: dict[str, int] | None = None
        self.send(th.HELLO, json.dumps({"readonly": readonly, "cols": cols, "rows": rows}).encode())

    def send(self, kind: int, payload: bytes) -> None:
        self.sock.sendall(th.frame(kind, payload))

    def type(self, text: str) -> None:
        self.send(th.INPUT, text.encode())

    def pump(self, seconds: float) -> bool:
        """Read for up to `seconds`; False once the holder has closed the connection."""
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(1 << 20)
        except TimeoutError:
            return True
        if not data:
            return False
        for kind, payload in self.decoder.feed(data):
            if kind == th.OUTPUT:
                self.output += payload
            elif kind == th.EXIT:
                self.exit = json.loads(payload)
        return True

    def until(self, needle: bytes, *, start: int = 0, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.output[start:]:
            left = deadline - time.monotonic()
            seen = left > 0 and self.pump(min(left, 0.5))
            assert seen, f"{needle!r} not seen; got {bytes(self.output[-300:])!r}"

    def settle(self, seconds: float = 0.3) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.pump(0.05):
            pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "terminal-1.sock"
    started = subprocess.run(
        [sys.executable, str(TOOL), "start", "--socket", str(path), "--spool", str(tmp_path / "out.jsonl"),
         "--cols", "80", "--rows", "24", "--replay-bytes", str(256 * 1024), "--", *BASH],
        capture_output=True, text=True, check=True, timeout=10,
    )  # fmt: skip
    assert started.stdout.strip() == "started"
    tab = Tab(path)
    # No bracketed-paste switch before each prompt: the tests look for output then the prompt.
    tab.type(f"PS1='{PROMPT[:-2].decode()}''$ '; stty -echoctl; bind 'set enable-bracketed-paste off'\r")
    tab.until(PROMPT)
    tab.close()
    yield path
    subprocess.run([sys.executable, str(TOOL), "stop", str(tmp_path)], capture_output=True, check=False)


def recorded(folder: Path) -> str:
    lines = (folder / "out.jsonl").read_text().splitlines()
    return "".join(json.loads(line)[2] for line in lines)


def test_starting_a_running_terminal_again_leaves_its_shell_alone(holder: Path) -> None:
    again = subprocess.run(
        [sys.executable, str(TOOL), "start", "--socket", str(holder), "--", *BASH], capture_output=True, text=True
    )
    assert again.stdout.strip() == "running"
    tab = Tab(holder)
    tab.type("echo SAME$((6*7)) $PS1\r")
    tab.until(b"SAME42 HELD")


def test_a_tab_that_attaches_after_ten_thousand_lines_gets_the_last_screen_and_the_prompt(holder: Path) -> None:
    tab = Tab(holder)
    tab.settle()
    tab.type("seq 1 10000\r")
    tab.until(b"10000\r\n" + PROMPT)
    tab.close()

    again = Tab(holder, readonly=True)
    again.until(PROMPT)
    replay = bytes(again.output)
    assert replay.startswith(th.RESET), "a fresh screen first"
    lines = replay.split(b"\r\n")
    assert lines[-1] == PROMPT, "the cursor is left after the prompt, where the shell left it"
    assert lines[-25:-1] == [str(n).encode() for n in range(9977, 10001)], "the screen's last 24 lines"
    assert b"\r\n1\r\n2\r\n" in replay, "the whole run is in the scrollback"


def test_the_replay_starts_on_a_whole_line_and_brings_back_modes_set_before_it(holder: Path, tmp_path: Path) -> None:
    tab = Tab(holder)
    tab.settle()
    # Application cursor keys, then more output than the holder keeps: the mode was set before the
    # kept bytes, and a reattaching xterm.js must be told, or arrow keys would break in the program.
    tab.type("printf '\\033[?1h'; head -c 600000 /dev/zero | tr '\\0' x | fold -w 79; echo; echo END\r")
    tab.until(b"END\r\n" + PROMPT, timeout=30)
    tab.close()
    again = Tab(holder, readonly=True)
    again.until(PROMPT)
    replay = bytes(again.output)
    assert len(replay) <= 256 * 1024 + 64
    body = replay[len(th.RESET) :]
    assert body.startswith(b"x" * 79 + b"\r\n"), body[:100]
    assert replay.endswith(b"\x1b[?1h"), "application cursor keys are on again after the replay"


def test_every_byte_is_recorded_once_whether_no_tab_or_two_are_attached(holder: Path, tmp_path: Path) -> None:
    tab = Tab(holder)
    tab.settle()
    tab.type("sleep 1; echo DETACHED$((6*7))\r")
    tab.close()  # printed with nobody attached
    time.sleep(2)
    one, two = Tab(holder), Tab(holder)
    one.settle()
    one.type("echo BOTH$((6*7))\r")
    one.until(b"BOTH42")
    two.until(b"BOTH42")
    time.sleep(0.3)
    text = recorded(tmp_path)
    assert text.count("DETACHED42") == 1
    assert text.count("BOTH42") == 1


def test_a_flood_is_recorded_whole_in_few_events_while_an_echo_goes_at_once(holder: Path, tmp_path: Path) -> None:
    tab = Tab(holder)
    tab.settle()
    before = len((tmp_path / "out.jsonl").read_text().splitlines())
    # About 2 MB, read from the PTY a few KB at a time: batched, so recorded in far fewer events.
    tab.type("yes 0123456789abcdefghijklmnopqrstuvwxyz | head -n 50000; echo FLOOD$((6*7))\r")
    tab.until(b"FLOOD42\r\n" + PROMPT, timeout=30)
    tab.settle()
    lines = (tmp_path / "out.jsonl").read_text().splitlines()[before:]
    text = "".join(json.loads(line)[2] for line in lines)
    assert text.count("0123456789abcdefghijklmnopqrstuvwxyz\r\n") == 50000
    assert len(lines) < 200, len(lines)  # 2 MB in 4 KB reads would be about 500
    # What the tab was sent is exactly what was recorded: nothing sent unrecorded, nothing twice.
    assert tab.output.decode().count("0123456789abcdefghijklmnopqrstuvwxyz\r\n") == 50000
    # A keystroke's echo is not held back for a batch.
    start = len(tab.output)
    began = time.monotonic()
    tab.type("x")
    tab.until(b"x", start=start)
    assert time.monotonic() - began < th.BATCH_SECONDS * 50


def test_a_watcher_cannot_type_or_resize(holder: Path) -> None:
    watcher = Tab(holder, readonly=True)
    watcher.type("echo WATCHER$((6*7))\r")
    watcher.send(th.RESIZE, struct.pack(">HH", 50, 10))
    tab = Tab(holder, cols=80, rows=24)
    tab.settle()
    start = len(tab.output)
    tab.type("stty size\r")
    tab.until(b"24 80", start=start)
    assert b"WATCHER42" not in tab.output


def test_a_watcher_that_stops_reading_never_holds_the_shell_back(holder: Path) -> None:
    watcher = Tab(holder, readonly=True)
    watcher.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    tab = Tab(holder)
    tab.settle()
    start = len(tab.output)
    tab.type("head -c 10000000 /dev/zero | tr '\\0' y | fold -w 79; echo FLOODED\r")
    tab.until(b"FLOODED\r\n" + PROMPT, start=start, timeout=45)
    # The watcher, reading again, is sent the screen as it is now rather than 20 MB of backlog.
    watcher.until(b"FLOODED", timeout=20)


def test_a_writer_that_stops_reading_holds_the_shell_back(holder: Path) -> None:
    tab = Tab(holder)
    tab.settle()
    tab.type("for i in $(seq 1 200000); do echo line-$i; done; echo DONE\r")
    time.sleep(3)  # not reading: the holder stops reading the shell once our queue is full
    tab.until(b"line-", timeout=5)
    tab.type("\x03")
    tab.until(PROMPT, start=len(tab.output) - 10, timeout=30)
    assert b"line-200000" not in tab.output, "the shell was held back, not run to the end unread"


def test_a_malformed_frame_drops_that_client_and_the_terminal_goes_on(holder: Path) -> None:
    bad = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bad.connect(str(holder))
    bad.sendall(struct.pack(">BI", th.INPUT, 50 * 1024 * 1024))
    bad.settimeout(5)
    assert bad.recv(100) == b"", "a frame claiming 50 MB is refused by closing that connection"
    tab = Tab(holder)
    tab.type("echo ALIVE$((6*7))\r")
    tab.until(b"ALIVE42")


def test_the_shell_exiting_ends_the_holder_with_its_status(holder: Path) -> None:
    tab = Tab(holder)
    tab.settle()
    tab.type("exit 3\r")
    while tab.pump(5):
        pass
    assert tab.exit == {"status": 3}
    assert not holder.exists(), "the socket goes with the holder"


def test_stop_ends_the_holder_and_records_what_the_shell_printed_last(holder: Path, tmp_path: Path) -> None:
    tab = Tab(holder)
    tab.settle()
    tab.type("echo LAST$((6*7))\r")
    tab.until(b"LAST42")
    stopped = subprocess.run([sys.executable, str(TOOL), "stop", str(tmp_path)], capture_output=True, text=True)
    assert stopped.stdout.strip() == "1"
    while tab.pump(5):
        pass
    assert tab.exit is not None
    assert "LAST42" in recorded(tmp_path)
