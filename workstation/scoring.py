"""Running scorers on the workstation: the trusted half in a scoring instance of the attempt's sandbox,
the expert's code in harness instances of it, and every file of the expert's through a snapshot.

A scoring run (`score`) goes like this:

1. **Snapshot.** The files the package names (`workspace_files`) are read from the workspace by an
   instance running as the attempt's user (so a symlink can only point inside the sandbox's own
   view), streamed out as a tar and unpacked here keeping regular files only. The trusted half sees
   that snapshot at /home/agent, never the live workspace.
2. **Trusted half.** The package's scorer runs in an instance as the attempt's user with the group
   `protected`, its fresh scorer copy and the environment's data read-only, and no network unless the
   package needs an endpoint (`scorer_network: host`). No expert code runs there.
3. **Harness.** When the scorer must run the expert's code (a kernel, a training script, a
   scaffold), it asks for it on /run/rebench/harness.sock: each request runs in its own instance of
   the attempt's sandbox, as the attempt's user without `protected`, with the live workspace, the
   scorer's inputs read-only, and no network but the bridges it asks for (the scorer's own proxy).
   What the harness writes to /run/rebench/out comes back as regular files only.

Each instance is a cgroup under the attempt's (`score-<job>`, `harness-<job>-<n>`): killed whole on
a timeout, its out-of-memory kills counted. Start scripts, which run only our code on our files,
still run as plain processes (`run`).
"""

from __future__ import annotations

import contextlib
import ctypes
import grp
import json
import math
import os
import resource
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workstation import sandbox
from workstation.users import is_root

PROTECTED_GROUP = "protected"
RESULT_MARKER_ENV = "REBENCH_RESULT_MARKER"
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


@dataclass
class Outcome:
    """What a scoring run yields for the score log: a number or NaN, a message, details."""

    score: float | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    # SHA-256 of the scorer that ran (EnvironmentPackage.scorer_digest); set by the worker, never by the scorer.
    scorer_digest: str = ""


def ensure_protected_group() -> int:
    """The `protected` group (no shell user is ever in it), created if missing; its gid (-1 when not root)."""
    if not is_root():
        return -1
    try:
        return grp.getgrnam(PROTECTED_GROUP).gr_gid
    except KeyError:
        with contextlib.suppress(subprocess.CalledProcessError):  # another worker made it meanwhile
            # A fixed command on the system PATH, no input of anyone's.
            subprocess.run(["groupadd", "--system", PROTECTED_GROUP], check=True, capture_output=True)  # noqa: S603, S607
        return grp.getgrnam(PROTECTED_GROUP).gr_gid


def protected_gid() -> int:
    """The group's gid, the group made first on a machine that has never scored."""
    return ensure_protected_group()


def protect_tree(path: Path, *, writable: bool = False) -> None:
    """root:protected, no access for others: the scorer user reads it, the expert's user can't."""
    if not is_root():
        return
    gid = ensure_protected_group()
    dir_mode, file_mode = (0o2770, 0o660) if writable else (0o750, 0o640)
    for root, dirs, files in os.walk(path):
        os.chown(root, 0, gid)
        os.chmod(root, dir_mode)
        for name in files:
            target = os.path.join(root, name)
            os.chown(target, 0, gid)
            os.chmod(target, file_mode)
        for name in dirs:
            os.chown(os.path.join(root, name), 0, gid)


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
        self.buffers = {name: (bytearray(), deque(), [0]) for name in ("out", "err")}
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


OOM_SIGNS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "out of memory", "DefaultCPUAllocator")


def new_marker() -> str:
    return f"REBENCH-RESULT-{secrets.token_hex(12)}"


def outcome_from(result: RunResult, marker: str, *, timeout: float) -> Outcome:
    """Read the scorer's JSON result between markers; every failure becomes a NaN with a reason."""
    if result.timed_out:
        return Outcome(None, f"The scorer ran past its {timeout:g} s limit and was stopped.", {"timeout": True})
    parts = result.stdout.split(marker)
    payload = parts[1] if len(parts) >= 3 else None
    if result.returncode != 0 or payload is None:
        tail = result.stderr_tail()
        if any(sign in result.stderr for sign in OOM_SIGNS) or result.returncode == -signal.SIGKILL:
            return Outcome(None, "The scorer ran out of memory.", {"out_of_memory": True, "stderr_tail": tail})
        if result.returncode != 0:
            return Outcome(
                None,
                f"The scorer failed (exit status {result.returncode}).",
                {"returncode": result.returncode, "stderr_tail": tail},
            )
        return Outcome(None, "The scorer printed no result.", {"stderr_tail": tail})
    try:
        data = json.loads(payload)
    except ValueError:
        return Outcome(None, "The scorer's result is not JSON.", {"result": payload[:500]})
    if not isinstance(data, dict):
        data = {"score": data}
    score = data.get("score")
    message = str(data.get("message", ""))[:2000]
    details = data.get("details") if isinstance(data.get("details"), dict) else {}
    if score is None:
        return Outcome(None, message or "No valid score.", details)
    if isinstance(score, bool) or not isinstance(score, int | float):
        return Outcome(None, f"The scorer returned {type(score).__name__} {str(score)[:80]!r}, not a number.", details)
    score = float(score)
    if not math.isfinite(score):
        return Outcome(None, message or "The score is not a finite number.", details)
    return Outcome(score, message, details)


def crossable(path: Path) -> None:
    """Let others cross (not list) the folders above `path` that we made: sandboxes mount what is below."""
    if not is_root():
        return
    for parent in path.parents:
        info = parent.stat()
        if info.st_mode & 0o001 or info.st_uid != 0:
            break
        parent.chmod(info.st_mode | 0o011)


def fresh_copy(source: Path | Callable[[Path], None], target: Path, *, protected: bool) -> Path:
    """Copy `source` (or let it fill `target`) anew, so a tampered copy from an earlier run never scores."""
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    crossable(target)
    if callable(source):
        source(target)
    else:
        shutil.copytree(source, target)
    if protected:
        protect_tree(target)
    return target


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
    ro_binds: list[tuple[str, str]] = (),  # type: ignore[assignment]
    rw_binds: list[tuple[str, str]] = (),  # type: ignore[assignment]
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
        with contextlib.suppress(BrokenPipeError, OSError):
            process.stdin.write(stdin)  # type: ignore[union-attr]
            process.stdin.close()  # type: ignore[union-attr]
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


def unpack_regular_files(archive: Path, target: Path, *, max_bytes: int = SNAPSHOT_MAX_BYTES) -> list[str]:
    """Unpack a tar made by an instance: regular files and folders only, inside `target`, nothing else.

    Links, devices, absolute or climbing names are dropped: what the expert wrote can only become
    plain bytes here.
    """
    import tarfile

    kept, total = [], 0
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        for member in tar:
            name = os.path.normpath(member.name)
            if name.startswith(("/", "..")) or name == "." or not (member.isfile() or member.isdir()):
                continue
            total += member.size
            if total > max_bytes:
                raise ValueError(f"the files to score exceed {max_bytes} bytes")
            member.name = name
            tar.extract(member, target, filter="data")
            if member.isfile():
                kept.append(name)
    return kept


def snapshot(policy: sandbox.Policy, name: str, files: list[str], target: Path, *, timeout: float = 600) -> list[str]:
    """Copy `files` (relative to the workspace) out of the live workspace as the attempt's user; see the module doc."""
    target.mkdir(parents=True, exist_ok=True)
    if not files:
        return []
    script = (
        "import os, sys, tarfile\n"
        "t = tarfile.open(fileobj=sys.stdout.buffer, mode='w|', dereference=True)\n"
        "seen = set()\n"
        "def add(p):\n"
        "    if os.path.isdir(p):\n"
        "        real = os.path.realpath(p)\n"
        "        if real in seen: return\n"  # a link back up the tree: once is enough
        "        seen.add(real)\n"
        "    try:\n"
        "        t.add(p, recursive=False, filter=lambda i: i if (i.isfile() or i.isdir()) else None)\n"
        "    except OSError as e:\n"  # unreadable, a link to what its user can't read, a pipe: left out
        "        print('skipped', p, e.strerror, file=sys.stderr)\n"
        "        return\n"
        "    if os.path.isdir(p):\n"
        "        for n in sorted(os.listdir(p)): add(os.path.join(p, n))\n"
        "for n in sys.argv[1:]:\n"
        "    p = os.path.normpath(n)\n"
        "    if p.startswith(('/', '..')) or not os.path.exists(p): continue\n"
        "    add(p)\n"
        "t.close()\n"
    )
    archive = target.parent / f".{target.name}.tar"
    with archive.open("wb") as out:
        result = run_instance(
            policy, name, [policy.python, "-c", script, *files], timeout=timeout, stdout_file=out, env=_plain_env()
        )
    try:
        if result.returncode != 0:
            raise ValueError(f"reading the workspace failed: {result.stderr_tail(5)}")
        return unpack_regular_files(archive, target)
    finally:
        archive.unlink(missing_ok=True)


def _plain_env() -> dict[str, str]:
    return {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}


def protected_folder(path: Path, *, gid: int, mode: int = 0o750) -> Path:
    """A fresh folder root:protected (or ours when not root); what was there from an earlier run goes."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=False)
    crossable(path)
    if is_root() and gid >= 0:
        os.chown(path, 0, gid)
    path.chmod(mode)
    return path


def _give(path: Path, uid: int, gid: int, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if is_root():
        os.chown(path, uid, gid)
    path.chmod(mode)
    return path


class HarnessServer:
    """Serves the trusted scorer's requests to run the expert's code, each in a new harness instance."""

    def __init__(self, *, policy: sandbox.Policy, run_dir: Path, job: str, code: Path | None) -> None:
        self.policy = policy
        self.run_dir = run_dir
        self.job = job
        self.code = code
        self.count = 0
        self.lock = threading.Lock()
        self.path = run_dir / "harness.sock"
        import socket

        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with sandbox.unix_path(str(self.path)) as address:
            self.listener.bind(address)
        if is_root():
            os.chown(self.path, policy.uid, policy.gid)
        self.path.chmod(0o600)
        self.listener.listen(16)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: Any) -> None:
        with connection:
            data = b""
            while not data.endswith(b"\n"):
                chunk = connection.recv(65536)
                if not chunk:
                    return
                data += chunk
                if len(data) > REQUEST_MAX_BYTES:
                    connection.sendall(
                        json.dumps({"error": f"request over {REQUEST_MAX_BYTES} bytes"}).encode() + b"\n"
                    )
                    return
            try:
                request = json.loads(data)
                answer = self.run(request)
            except Exception as exc:  # a bad request is the scorer's bug: it gets the reason
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            connection.sendall(json.dumps(answer).encode() + b"\n")

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.count += 1
            number = self.count
        exchange = self.run_dir / "exchange"
        out = _give(self.run_dir / f"out-{number}", self.policy.uid, self.policy.gid)
        ro_binds: list[tuple[str, str]] = []
        if self.code is not None:
            ro_binds.append((str(self.code), HARNESS_CODE))
        inputs = str(request.get("inputs") or "")
        if inputs:
            source = (exchange / inputs).resolve()
            if not source.is_relative_to(exchange.resolve()) or not source.is_dir():
                raise ValueError(f"inputs must be a folder in the exchange, not {inputs!r}")
            ro_binds.append((str(source), HARNESS_IN))
        bridges = []
        for port, socket_name in request.get("bridges") or []:
            path = (exchange / str(socket_name)).resolve()
            if not path.is_relative_to(exchange.resolve()):
                raise ValueError("a bridge's socket must be in the exchange")
            ro_binds.append((str(path), f"/run/bridges/{int(port)}.sock"))
            bridges += ["--bridge", f"{int(port)}=/run/bridges/{int(port)}.sock"]
        argv = [str(a) for a in request["argv"]]
        if bridges:
            argv = [self.policy.python, f"{sandbox.TOOLS}/{sandbox.SPAWNER}", "run", *bridges, "--", *argv]
        memory_gb = float(request.get("memory_gb") or 0)
        result = run_instance(
            self.policy,
            f"harness-{self.job}-{number}",
            argv,
            timeout=float(request.get("timeout") or 600),
            env={**_plain_env(), **{str(k): str(v) for k, v in (request.get("env") or {}).items()}},
            memory_bytes=int(memory_gb * 1024**3) if memory_gb else None,
            ro_binds=ro_binds,
            rw_binds=[(str(out), HARNESS_OUT)],
            stdin=str(request.get("stdin") or "").encode(),
        )
        # What the expert's code wrote comes back as regular files in a folder the scorer can read
        # and the harness can't touch again.
        if result.sandbox_failed:
            raise sandbox.SandboxError(f"the harness's sandbox could not start: {result.stderr.strip()[:500]}")
        returned = protected_folder(exchange / f"harness-{number}", gid=_protected_or_own_gid(), mode=0o750)
        archive = self.run_dir / f".out-{number}.tar"
        import tarfile

        with tarfile.open(archive, "w") as tar:
            tar.add(out, arcname=".", filter=lambda i: i if (i.isfile() or i.isdir()) else None)
        files = unpack_regular_files(archive, returned)
        archive.unlink(missing_ok=True)
        shutil.rmtree(out, ignore_errors=True)
        if is_root():
            protect_tree(returned)
        return {
            "returncode": result.returncode,
            "timed_out": result.timed_out,
            "out_of_memory": result.out_of_memory,
            "duration": result.duration,
            "stdout": result.stdout[-20000:],
            "stderr": result.stderr[-20000:],
            "output_dir": f"{EXCHANGE}/harness-{number}",
            "files": files,
        }


def _readable_by(folder: Path, gid: int) -> None:
    """root:<gid>, read-only for the group (folders crossable, scripts runnable), nothing for others."""
    if not is_root():
        return
    for root, dirs, files in os.walk(folder):
        os.chown(root, 0, gid)
        os.chmod(root, 0o750)  # noqa: S103 - the attempt's group reads our harness code; others nothing
        for name in files:
            path = os.path.join(root, name)
            os.chown(path, 0, gid)
            os.chmod(path, 0o750 if os.stat(path).st_mode & 0o111 else 0o640)
        for name in dirs:
            os.chown(os.path.join(root, name), 0, gid)


def _protected_or_own_gid() -> int:
    return protected_gid() if is_root() else -1


@dataclass
class ScorerRun:
    """One scoring run of a package: what the trusted half gets, besides the snapshot and the harness."""

    job: str
    argv: list[str]  # the scorer's command, with its paths as the instance sees them
    scorer_copy: Path  # bound read-only at the same path
    workspace_files: list[str]
    data_paths: list[str] = field(default_factory=list)  # read-only at the same paths (caches, datasets)
    harness_code: Path | None = None
    timeout: float = 600
    memory_bytes: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    network: str = "none"


def score(policy: sandbox.Policy, run: ScorerRun, run_dir: Path) -> tuple[InstanceResult, list[str]]:
    """The trusted half over a snapshot, with the harness at hand; returns its result and the files snapshotted."""
    if not policy.isolate:
        raise sandbox.SandboxError(
            "scorers run only inside the attempt's sandbox, and this workstation has no bubblewrap "
            "(it runs with SANDBOX_ALLOW_UNSAFE): install bubblewrap to score here"
        )
    gid = ensure_protected_group()
    # Crossable by the attempt's user (the harness mounts folders below it), listable by no one.
    protected_folder(run_dir, gid=gid, mode=0o711)
    copied = snapshot(policy, f"snapshot-{run.job}", run.workspace_files, run_dir / "workspace")
    if is_root():
        protect_tree(run_dir / "workspace")
    _give(run_dir / "exchange", policy.uid, gid if gid >= 0 else policy.gid, 0o770)
    harness_code = None
    if run.harness_code is not None:
        # A fresh copy the attempt's user can read (the scorer's copy is `protected`'s alone).
        harness_code = run_dir / "harness-code"
        shutil.copytree(run.harness_code, harness_code, symlinks=False)
        _readable_by(harness_code, policy.gid)
    server = HarnessServer(policy=policy, run_dir=run_dir, job=run.job, code=harness_code)
    trusted = dataclasses_replace(policy, workspace=str(run_dir / "workspace"), network=run.network)
    ro_binds = [(str(run.scorer_copy), str(run.scorer_copy)), (str(server.path), HARNESS_SOCKET)]
    ro_binds += [(path, path) for path in run.data_paths if path and os.path.exists(path)]
    groups = [gid] if gid >= 0 else None
    try:
        result = run_instance(
            trusted,
            f"score-{run.job}",
            run.argv,
            timeout=run.timeout,
            env={
                **_plain_env(),
                "HOME": SCORER_HOME,
                "TMPDIR": SCORER_HOME,
                **run.env,
                "REBENCH_HARNESS": HARNESS_SOCKET,
                "REBENCH_EXCHANGE": EXCHANGE,
            },
            groups=groups,
            memory_bytes=run.memory_bytes,
            ro_binds=ro_binds,
            rw_binds=[(str(run_dir / "exchange"), EXCHANGE)],
            stdin=b"",
        )
    finally:
        server.close()
    if result.sandbox_failed:
        raise sandbox.SandboxError(f"the scorer's sandbox could not start: {result.stderr.strip()[:500]}")
    return result, copied


def dataclasses_replace(policy: sandbox.Policy, **changes: Any) -> sandbox.Policy:
    import dataclasses

    return dataclasses.replace(policy, **changes)
