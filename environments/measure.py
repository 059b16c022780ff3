"""Measure an environment configuration's starting and reference raw scores, as its metadata records them.

Scorers run here directly, unsandboxed (a measurement of our own solutions, not a grading); those
that run the expert's code through the workstation's harness get `local_harness`, a stand-in that
runs each request as this user (also what tests use to call a scorer in-process).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from environments import packages
from workstation import sandbox as workstation_sandbox
from workstation import scoring as sandbox


@dataclass
class Measurement:
    label: str
    score: float | None
    message: str
    seconds: float


def _run_command(command: str, workspace: Path, package: packages.EnvironmentPackage) -> None:
    """The solution's own step (e.g. `python train.py`), run in the workspace as an expert would.

    With the CPU arithmetic pinned as start pins it: the reference score is the same on every machine.
    """
    if not command:
        return
    argv = [sys.executable if part == "python" else part for part in shlex.split(command)]
    env = {**_env(workspace), **packages.cpu_environment(package)}
    result = sandbox.run(argv, cwd=workspace, timeout=packages.START_TIMEOUT, memory_bytes=None, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{command!r} failed in {workspace}: {result.stderr_tail(10)}")


def _env(home: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}


def score_workspace(package: packages.EnvironmentPackage, workspace: Path, scratch: Path) -> tuple[float | None, str]:
    """Run the package's scorer on `workspace` (as this user, unsandboxed: a measurement, not a grading)."""
    copy = scratch / f"scorer-{workspace.name}"
    sandbox.fresh_copy(package.populate, copy, protected=False)
    marker = sandbox.new_marker()
    code = copy / package.harness_folder if package.harness_folder else None
    with local_harness(workspace, code=code) as harness_env:
        result = sandbox.run(
            package.scorer_argv(sys.executable, copy, workspace),
            cwd=workspace,
            timeout=package.score_timeout_seconds,
            memory_bytes=None,
            env={**_env(scratch), sandbox.RESULT_MARKER_ENV: marker, **harness_env},
        )
    outcome = sandbox.outcome_from(result, marker, timeout=package.score_timeout_seconds)
    return outcome.score, outcome.message


def measure(slug: str) -> list[Measurement]:
    """Prepare two fresh workspaces; score the starting solution in one and the reference solution in the other."""
    package = packages.find(slug)
    if package is None:
        raise packages.ConfigurationError(f"No package for {slug}.", field="slug")
    out = []
    with tempfile.TemporaryDirectory(prefix=f"measure-{slug}-") as tmp:
        scratch = Path(tmp)
        for label, source, command in (
            ("starting", None, str(package.extra.get("solution_command", ""))),
            ("reference", package.reference_dir, str(package.extra.get("reference_command", ""))),
        ):
            workspace = scratch / label
            workspace.mkdir(parents=True)
            package.prepare_staging(workspace)
            if source is not None and source.is_dir():
                shutil.copytree(source, workspace, dirs_exist_ok=True)
            began = time.monotonic()
            _run_command(command, workspace, package)
            score, message = score_workspace(package, workspace, scratch)
            out.append(Measurement(label, score, message, round(time.monotonic() - began, 2)))
    return out


def as_json(measurements: list[Measurement]) -> str:
    return json.dumps([m.__dict__ for m in measurements], indent=2)


# --- the harness, unsandboxed ---------------------------------------------------------------------

# What a harness instance shows at these paths (see workstation.scoring), and what stands in here.
HARNESS_CODE, HARNESS_IN, HARNESS_OUT = sandbox.HARNESS_CODE, sandbox.HARNESS_IN, sandbox.HARNESS_OUT
HARNESS_ANSWER_CHARS = 20_000


@contextlib.contextmanager
def local_harness(workspace: Path, *, code: Path | None = None) -> Iterator[dict[str, str]]:
    """Serve a scorer's harness requests (environments/common/harness.py) here, unsandboxed, while open.

    The same protocol as the workstation's `HarnessServer`, none of its walls: each request runs as
    this user, in `workspace`, with this host's network. For measuring our own solutions and for
    tests that call a scorer directly; never for grading. What a harness instance would show at
    /opt/rebench/harness (`code`), /run/rebench/in, /run/rebench/out and /home/agent is a local
    folder here: those paths are rewritten in the request's argv and environment values. A bridge
    runs the spawner's `run --bridge PORT=SOCKET` on this host's loopback, so two requests at once
    need two ports (a scorer that picks a free port for each gets that).

    Yields the variables the scorer needs: REBENCH_HARNESS and REBENCH_EXCHANGE.
    """
    # A short folder of its own: Unix socket paths (this one, a scorer's proxy) are limited to 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="rebench-harness-"))
    exchange = root / "exchange"
    exchange.mkdir()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(root / "harness.sock"))
    listener.listen(16)
    counter = iter(range(1, 1 << 30))
    lock = threading.Lock()

    def serve(connection: socket.socket) -> None:
        with connection:
            data = b""
            while not data.endswith(b"\n"):
                chunk = connection.recv(65536)
                if not chunk:
                    return
                data += chunk
            with lock:
                number = next(counter)
            try:
                answer = _run_locally(json.loads(data), workspace=workspace, code=code, root=root, number=number)
            except Exception as exc:  # a bad request is the scorer's bug: it gets the reason, as on the workstation
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            with contextlib.suppress(OSError):
                connection.sendall(json.dumps(answer).encode() + b"\n")

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield {"REBENCH_HARNESS": str(root / "harness.sock"), "REBENCH_EXCHANGE": str(exchange)}
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        shutil.rmtree(root, ignore_errors=True)


def _run_locally(
    request: dict[str, Any], *, workspace: Path, code: Path | None, root: Path, number: int
) -> dict[str, Any]:
    """One harness request as a plain process group; the answer HarnessServer.run would give."""
    exchange = root / "exchange"
    out = root / f"out-{number}"
    scratch = root / f"tmp-{number}"
    out.mkdir()
    scratch.mkdir()
    places = {HARNESS_OUT: str(out), workstation_sandbox.HOME: str(workspace)}
    if code is not None:
        places[HARNESS_CODE] = str(code)
    inputs = str(request.get("inputs") or "")
    if inputs:
        source = (exchange / inputs).resolve()
        if not source.is_relative_to(exchange.resolve()) or not source.is_dir():
            raise ValueError(f"inputs must be a folder in the exchange, not {inputs!r}")
        places[HARNESS_IN] = str(source)

    def local(text: str) -> str:
        for inside, outside in places.items():
            text = text.replace(inside, outside)
        return text

    argv = [local(str(a)) for a in request["argv"]]
    bridges = []
    for port, socket_name in request.get("bridges") or []:
        path = (exchange / str(socket_name)).resolve()
        if not path.is_relative_to(exchange.resolve()):
            raise ValueError("a bridge's socket must be in the exchange")
        bridges += ["--bridge", f"{int(port)}={path}"]
    if bridges:
        spawner = Path(workstation_sandbox.__file__).resolve().parent / workstation_sandbox.SPAWNER
        argv = [sys.executable, str(spawner), "run", *bridges, "--", *argv]
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workspace),
        "TMPDIR": str(scratch),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        **{str(k): local(str(v)) for k, v in (request.get("env") or {}).items()},
    }
    stdin = str(request.get("stdin") or "").encode()
    timeout = float(request.get("timeout") or 600)
    started = time.monotonic()
    process = subprocess.Popen(  # noqa: S603 - a scorer's harness command, run as the workstation would
        argv,
        cwd=workspace,
        env=env,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    timed_out = False
    try:
        stdout, stderr = process.communicate(stdin or None, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        # The group, as the workstation kills the whole instance: nothing the command started outlives it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    if timed_out:
        stdout, stderr = process.communicate()
    duration = time.monotonic() - started
    returned = exchange / f"harness-{number}"
    files = _copy_regular_files(out, returned)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
    return {
        "returncode": process.returncode,
        "timed_out": timed_out,
        "out_of_memory": False,
        "duration": duration,
        "stdout": stdout.decode("utf-8", "replace")[-HARNESS_ANSWER_CHARS:],
        "stderr": stderr.decode("utf-8", "replace")[-HARNESS_ANSWER_CHARS:],
        "output_dir": str(returned),
        "files": files,
    }


def _copy_regular_files(source: Path, target: Path) -> list[str]:
    """What the command wrote, as the workstation hands it back: regular files and folders, no links."""
    target.mkdir(parents=True, exist_ok=True)
    kept = []
    for folder, dirs, names in os.walk(source):
        relative = Path(folder).relative_to(source)
        dirs[:] = [d for d in dirs if not (Path(folder) / d).is_symlink()]
        for name in dirs:
            (target / relative / name).mkdir(exist_ok=True)
        for name in names:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                shutil.copyfile(path, target / relative / name)
                kept.append(str(relative / name) if str(relative) != "." else name)
    return sorted(kept)
