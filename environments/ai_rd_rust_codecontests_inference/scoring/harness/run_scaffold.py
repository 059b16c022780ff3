"""ai_rd_rust_codecontests_inference's harness: run the expert's scaffold.py on one held-out problem.

Usage: run_scaffold.py PROBLEM OUT TIMEOUT MEMORY_BYTES

Runs in a harness instance of the attempt's sandbox, as the attempt's user, in the live workspace,
with no network but the bridge to the scorer's budget proxy (OPENAI_BASE_URL), no key but the
proxy's one-run token, and none of the scorer's files. The scaffold's contract is unchanged:
`python scaffold.py` in the workspace, the problem's public view (PROBLEM) on stdin, the Rust
program on stdout, OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL / RUSTC in its environment,
HOME and TMPDIR a fresh folder. Written to OUT: `stdout` (its first OUTPUT_LIMIT + 1 bytes) and
`status.json` (exit status, whether it ran out of time, the end of its stderr). The scorer trusts
none of it: a scaffold can write there too, and only ever spoils its own answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO

SCAFFOLD = "scaffold.py"
OUTPUT_LIMIT = 256 * 1024
STDERR_TAIL = 4000


def _head(stream: IO[bytes], keep: bytearray, limit: int) -> None:
    """Keep the first `limit` bytes, read the rest away (a scaffold blocked on a full pipe would hang)."""
    while chunk := stream.read(65536):
        if len(keep) < limit:
            keep.extend(chunk[: limit - len(keep)])


def _tail(stream: IO[bytes], keep: bytearray, limit: int) -> None:
    while chunk := stream.read(65536):
        keep.extend(chunk)
        del keep[:-limit]


def main(problem: Path, out: Path, timeout: float, memory_bytes: int) -> int:
    if not Path(SCAFFOLD).is_file():
        (out / "status.json").write_text(json.dumps({"missing": True}))
        return 0
    scratch = tempfile.mkdtemp(prefix="scaffold-")

    def limits() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    stdout, stderr = bytearray(), bytearray()
    with problem.open("rb") as given:
        process = subprocess.Popen(  # noqa: S603 - the sandbox's interpreter on the workspace's scaffold
            [sys.executable, str(Path(SCAFFOLD).resolve())],
            env={**os.environ, "HOME": scratch, "TMPDIR": scratch},
            stdin=given,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=limits,
            close_fds=True,
        )
    readers = [
        threading.Thread(target=_head, args=(process.stdout, stdout, OUTPUT_LIMIT + 1), daemon=True),
        threading.Thread(target=_tail, args=(process.stderr, stderr, STDERR_TAIL), daemon=True),
    ]
    for reader in readers:
        reader.start()
    timed_out = False
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    for reader in readers:
        reader.join(timeout=5)
    shutil.rmtree(scratch, ignore_errors=True)
    (out / "stdout").write_bytes(bytes(stdout))
    status = {
        "returncode": process.returncode,
        "timed_out": timed_out,
        "stderr": stderr.decode("utf-8", "replace").strip(),
    }
    (out / "status.json").write_text(json.dumps(status))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])))
