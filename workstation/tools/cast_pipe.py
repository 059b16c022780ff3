#!/usr/bin/env python3
"""Records a tmux pane's output (tmux `pipe-pane` feeds it on stdin) as timed asciicast `o` events in a spool file.

Runs as the shell's user on the workstation, started by tmux with the pane, whether or not a browser
is attached; Python's standard library only, so any python3 runs it. Each read is written at once
(O_APPEND, one write per read), so a crash of anything else loses nothing already printed.

Under a flood tmux writes the pipe in small pieces; waking for each would cost a context switch
per piece on a machine whose cores tmux and the shell need (measured: a fifth of tmux's
throughput). So after a large read the recorder naps briefly and lets a large pipe fill: a
hundred wake-ups a second instead of tens of thousands. Typing (small reads) is written at once.
"""

import codecs
import contextlib
import fcntl
import json
import os
import sys
import time

READ_BYTES = 1024 * 1024
PIPE_BYTES = 1024 * 1024  # the most an unprivileged process may ask for (fs.pipe-max-size)
BUSY_BYTES = 4096
NAP_SECONDS = 0.01
F_SETPIPE_SZ = 1031  # Linux; fcntl.F_SETPIPE_SZ from Python 3.10 on


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: cast_pipe.py SPOOL_FILE < pane output\n")
        return 2
    fd = os.open(argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    with contextlib.suppress(OSError):  # not a pipe, or a smaller limit: the default size works too
        fcntl.fcntl(0, getattr(fcntl, "F_SETPIPE_SZ", F_SETPIPE_SZ), PIPE_BYTES)
    while True:
        try:
            data = os.read(0, READ_BYTES)
        except InterruptedError:
            continue
        text = decoder.decode(data, final=not data)
        if text:
            os.write(fd, (json.dumps([round(time.time(), 6), "o", text]) + "\n").encode())
        if not data:
            return 0
        if len(data) >= BUSY_BYTES:
            time.sleep(NAP_SECONDS)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
