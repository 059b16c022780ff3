"""For trusted scorers: run the expert's code in the attempt's sandbox and get back what it wrote (stdlib only).

A scorer never imports or runs the expert's code itself. It asks the workstation, over the socket
named by REBENCH_HARNESS, to run a command in a new instance of the attempt's sandbox: as the
attempt's user (without the scorer's `protected` group), with the live workspace at /home/agent,
the scorer's harness code at /opt/rebench/harness, a folder of inputs the scorer wrote at
/run/rebench/in (read-only), and /run/rebench/out to write results to. Nothing else of the
scorer's is there: not its code, not the references, not the held-out data.

What the command wrote to /run/rebench/out comes back as regular files in `Result.output_dir`.
Check every byte of it: it is the expert's.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HARNESS_CODE = "/opt/rebench/harness"
INPUTS = "/run/rebench/in"
OUTPUTS = "/run/rebench/out"


class HarnessError(Exception):
    """The workstation could not run the request (not the expert's code failing: that is a Result)."""


@dataclass
class Result:
    returncode: int | None
    timed_out: bool
    out_of_memory: bool
    duration: float
    stdout: str
    stderr: str
    output_dir: Path
    files: list[str] = field(default_factory=list)

    def stderr_tail(self, lines: int = 8) -> str:
        return "\n".join(self.stderr.strip().splitlines()[-lines:])

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.out_of_memory


STATUS_BYTES = 64 * 1024


def read_status(folder: Path) -> dict[str, Any]:
    """A harness's status.json: the expert's process wrote it, so it only ever explains a failure."""
    path = folder / "status.json"
    try:
        if not path.is_file() or path.stat().st_size > STATUS_BYTES:
            return {}
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def exchange() -> Path:
    """The folder shared with the harness: inputs go in sub-folders of it (see `inputs`)."""
    return Path(os.environ.get("REBENCH_EXCHANGE", "/run/rebench/exchange"))


def inputs(name: str) -> Path:
    """A new folder in the exchange for one request's inputs (shown to the harness at /run/rebench/in)."""
    folder = exchange() / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run(
    argv: list[str],
    *,
    timeout: float = 600,
    inputs_folder: str = "",
    bridges: Sequence[tuple[int, str]] = (),
    env: dict[str, str] | None = None,
    memory_gb: float = 0,
    stdin: str = "",
) -> Result:
    """Run `argv` in the attempt's sandbox (see the module doc); `bridges` are (port, socket in the exchange)."""
    request: dict[str, Any] = {
        "argv": argv,
        "timeout": timeout,
        "inputs": inputs_folder,
        "bridges": [[int(port), name] for port, name in bridges],
        "env": env or {},
        "memory_gb": memory_gb,
        "stdin": stdin,
    }
    path = os.environ.get("REBENCH_HARNESS", "")
    if not path:
        raise HarnessError("REBENCH_HARNESS is not set: this scorer runs only inside a scoring run.")
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(path)
        client.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = client.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        raise HarnessError(f"the workstation's harness did not answer: {exc}") from None
    finally:
        client.close()
    try:
        answer = json.loads(data)
    except ValueError:
        raise HarnessError(f"the workstation's harness answered {data[:200]!r}") from None
    if "error" in answer:
        raise HarnessError(str(answer["error"]))
    return Result(
        returncode=answer["returncode"],
        timed_out=bool(answer["timed_out"]),
        out_of_memory=bool(answer["out_of_memory"]),
        duration=float(answer["duration"]),
        stdout=str(answer["stdout"]),
        stderr=str(answer["stderr"]),
        output_dir=Path(answer["output_dir"]),
        files=list(answer.get("files") or []),
    )
