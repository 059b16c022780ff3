"""Processes a scoring run starts and the output it keeps: `run` (start scripts, plain processes) and
the capped reading of a child's stdout and stderr that every run, in a sandbox or not, uses."""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Kept from each stream: the head says what started, the tail why it ended; the middle of a
# scorer that prints 100 MB is dropped as it arrives, so memory stays flat.
HEAD_BYTES = 16 * 1024
TAIL_BYTES = 64 * 1024
STDERR_LINES = 20
PR_SET_PDEATHSIG = 1


@dataclass
class RunResult:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    duration: float
    dropped_bytes: int = 0

    def stderr_tail(self, lines: int = STDERR_LINES) -> str:
        return "\n".join(self.stderr.strip().splitlines()[-lines:])


def _drain(stream: Any, head: bytearray, tail: deque[bytes], counter: list[int]) -> None:
    tail_size = 0
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            break
        room = HEAD_BYTES - len(head)
        if room > 0:
            head.extend(chunk[:room])
            chunk = chunk[room:]
        if chunk:
            tail.append(chunk)
            tail_size += len(chunk)
            while tail_size - len(tail[0]) >= TAIL_BYTES:
                popped = len(tail.popleft())
                tail_size -= popped
                counter[0] += popped
    stream.close()


def _capped(head: bytearray, tail: deque[bytes], counter: list[int]) -> tuple[str, int]:
    rest = b"".join(tail)
    dropped = counter[0] + max(0, len(rest) - TAIL_BYTES)
    rest = rest[-TAIL_BYTES:]
    text = head.decode("utf-8", "replace")
    if dropped:
        text += f"\n[... {dropped} bytes of output cut ...]\n"
    return text + rest.decode("utf-8", "replace"), dropped


class _Output:
    """A child's stdout (optionally) and stderr, read as they stream and capped (see _drain)."""

    def __init__(self, process: subprocess.Popen[bytes], *, stdout: bool) -> None:
        self.buffers: dict[str, tuple[bytearray, deque[bytes], list[int]]] = {
            name: (bytearray(), deque(), [0]) for name in ("out", "err")
        }
        streams = [("err", process.stderr)] + ([("out", process.stdout)] if stdout else [])
        self.readers = [
            threading.Thread(target=_drain, args=(stream, *self.buffers[name]), daemon=True) for name, stream in streams
        ]
        for reader in self.readers:
            reader.start()

    def collect(self) -> dict[str, Any]:
        """After the child has exited: stdout, stderr and how many bytes were dropped between head and tail."""
        for reader in self.readers:
            reader.join(timeout=5)
        stdout, dropped_out = _capped(*self.buffers["out"])
        stderr, dropped_err = _capped(*self.buffers["err"])
        return {"stdout": stdout, "stderr": stderr, "dropped_bytes": dropped_out + dropped_err}


def _preexec(memory_bytes: int | None, run_as: tuple[int, int, list[int]] | None, rlimit: str = "as") -> Any:
    # RLIMIT_AS counts every mapping; CUDA reserves vast PROT_NONE address ranges at start-up, so
    # GPU scorers take RLIMIT_DATA instead (writable private memory: what an allocation uses).
    which = resource.RLIMIT_DATA if rlimit == "data" else resource.RLIMIT_AS

    def setup() -> None:
        os.setsid()
        if memory_bytes:
            resource.setrlimit(which, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if run_as is not None:
            uid, gid, groups = run_as
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
        # After the uid change, which clears it: a worker killed mid-run takes its scorer along.
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    return setup


def run(
    argv: list[str],
    *,
    cwd: Path,
    timeout: float,
    memory_bytes: int | None,
    env: dict[str, str],
    run_as: tuple[int, int, list[int]] | None = None,
    memory_rlimit: str = "as",
) -> RunResult:
    """Run `argv`, killing its whole process group at `timeout`; output is capped, never buffered whole."""
    started = time.monotonic()
    proc = subprocess.Popen(  # noqa: S603 - argv is built by the caller from fixed parts
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_preexec(memory_bytes, run_as, memory_rlimit),
        close_fds=True,
    )
    output = _Output(proc, stdout=True)
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        # The group, not just the child: a scorer's own subprocesses must not outlive it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return RunResult(
        returncode=proc.returncode, timed_out=timed_out, duration=time.monotonic() - started, **output.collect()
    )
