"""Running a command in a new instance of the attempt's sandbox, and the paths every instance of a
scoring run sees."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workstation import sandbox
from workstation.scoring.processes import RunResult, _Output

# --- scoring inside the attempt's sandbox -----------------------------------------------------------

SNAPSHOT_MAX_BYTES = 64 * 1024**3
REQUEST_MAX_BYTES = 1024 * 1024
HARNESS_SOCKET = "/run/rebench/harness.sock"
HARNESS_CODE = "/opt/rebench/harness"
HARNESS_IN = "/run/rebench/in"
HARNESS_OUT = "/run/rebench/out"
EXCHANGE = "/run/rebench/exchange"
SCORER_HOME = "/tmp"  # noqa: S108 - the scorer's instance's own private tmpfs


@dataclass
class InstanceResult(RunResult):
    out_of_memory: bool = False

    @property
    def sandbox_failed(self) -> bool:
        """bubblewrap itself refused (a bind it couldn't make): the workstation's fault, not the command's."""
        return self.returncode == 1 and self.stderr.lstrip().startswith("bwrap:")


def run_instance(
    policy: sandbox.Policy,
    name: str,
    argv: list[str],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    groups: list[int] | None = None,
    memory_bytes: int | None = None,
    ro_binds: Sequence[tuple[str, str]] = (),
    rw_binds: Sequence[tuple[str, str]] = (),
    stdin: bytes = b"",
    stdout_file: Any = None,
) -> InstanceResult:
    """Run `argv` in a new instance of the attempt's sandbox; the whole instance dies at `timeout`.

    Output is capped as it streams (or, with `stdout_file`, written there whole: a snapshot's tar).
    """
    started = time.monotonic()
    instance = sandbox.launch(
        policy,
        name,
        argv,
        env=env,
        groups=groups,
        memory_bytes=memory_bytes,
        ro_binds=ro_binds,
        rw_binds=rw_binds,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=stdout_file if stdout_file is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process = instance.process
    output = _Output(process, stdout=stdout_file is None)
    if stdin:
        assert process.stdin is not None  # a pipe whenever there is input
        with contextlib.suppress(BrokenPipeError, OSError):
            process.stdin.write(stdin)
            process.stdin.close()
    timed_out = False
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        instance.kill()
        process.wait()
    collected = output.collect()
    out_of_memory = instance.oom_killed()
    instance.close()
    return InstanceResult(
        returncode=process.returncode,
        timed_out=timed_out,
        duration=time.monotonic() - started,
        out_of_memory=out_of_memory,
        **collected,
    )


def _plain_env() -> dict[str, str]:
    return {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
