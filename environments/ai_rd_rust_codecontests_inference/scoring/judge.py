"""Compile a Rust answer with rustc and run it on a problem's tests, each step in a sandbox of rlimits.

Every untrusted step (rustc on the answer, the answer's program) runs in its own session in a fresh
temporary directory with CPU-time, address-space, file-size and open-file limits and a wall-clock
timeout that kills the whole process group. The program itself also gets RLIMIT_NPROC = 0, so a
fork or a thread fails at once, and its stdout goes to a file under RLIMIT_FSIZE, so printing or
writing too much ends it with SIGXFSZ. Where the kernel has Landlock, the program may write only in
its own test's folder, open no TCP connection and signal nothing outside itself. When the judge
runs as root both steps run as `nobody` instead (root ignores RLIMIT_NPROC).

The scorer splits the work (see harness/judge_answer.py): compiling and running happen in a harness
instance of the attempt's sandbox, which gets the tests' inputs only (`run_one`); the expected
outputs stay with the scorer, which compares what came back (`verdict_from`). `judge` does both in
one process, for the expert's own checks.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NOBODY = 65534
SOURCE_LIMIT_BYTES = 256 * 1024


@dataclass(frozen=True)
class Limits:
    compile_seconds: float = 30.0
    compile_memory_bytes: int = 2 * 1024**3
    opt_level: int = 1
    run_cpu_seconds: float = 1.0  # per test; a problem's own time limit replaces it
    run_memory_bytes: int = 256 * 1024**2
    output_bytes: int = 16 * 1024**2
    open_files: int = 32

    def for_problem(self, problem: dict[str, Any], time_scale: float = 1.0) -> Limits:
        """The problem's own time and memory limits (CodeContests fields), time scaled for this machine."""
        limit = problem.get("time_limit") or {}
        seconds = float(limit.get("seconds", 0) or 0) + float(limit.get("nanos", 0) or 0) / 1e9
        memory = int(problem.get("memory_limit_bytes") or 0)
        return Limits(
            compile_seconds=self.compile_seconds,
            compile_memory_bytes=self.compile_memory_bytes,
            opt_level=self.opt_level,
            run_cpu_seconds=seconds * time_scale if seconds > 0 else self.run_cpu_seconds,
            run_memory_bytes=max(memory, 64 * 1024**2) if memory else self.run_memory_bytes,
            output_bytes=self.output_bytes,
            open_files=self.open_files,
        )


@dataclass
class Verdict:
    solved: bool
    reason: str
    tests_passed: int = 0
    tests_total: int = 0
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "solved": self.solved,
            "reason": self.reason,
            "tests_passed": self.tests_passed,
            "tests_total": self.tests_total,
            "seconds": round(self.seconds, 3),
            **self.details,
        }


class JudgeUnavailable(Exception):
    """No usable rustc: a configuration problem of the workstation, not the answer's fault."""


def find_rustc(configured: str = "") -> str:
    """A rustc the judge's user can execute: the configured one, else on PATH, else Debian's /usr/bin/rustc.

    As root the judge compiles as `nobody`, who can't reach a rustup toolchain under /root.
    """
    candidates = [configured] if configured else [shutil.which("rustc") or "", "/usr/bin/rustc", "/usr/local/bin/rustc"]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and _runnable(candidate):
            return candidate
    raise JudgeUnavailable(
        "No rustc the judge can run"
        + (f" (configured: {configured})" if configured else "")
        + ": install Debian's rustc package (apt-get install rustc) or set RUST_CODECONTESTS_RUSTC."
    )


def _runnable(path: str) -> bool:
    if os.geteuid() != 0:
        return os.access(path, os.X_OK)
    real = Path(os.path.realpath(path))
    # As root we run it as nobody: every folder on the way and the file must be open to others.
    return bool(real.stat().st_mode & 0o001) and all(p.stat().st_mode & 0o001 for p in real.parents)


@dataclass
class _Run:
    returncode: int | None
    timed_out: bool
    seconds: float
    stderr: str

    @property
    def ended_badly(self) -> bool:
        """Failed by itself, whatever it printed: no output needs comparing."""
        return self.timed_out or self.returncode != 0


# --- Landlock: an answer writes only in its own test's folder ----------------------------------------
# The numbers of <linux/landlock.h>; the system calls are 444-446 on every architecture.
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_FS_WRITE_FILE, _FS_REMOVE_DIR, _FS_REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
_FS_MAKE = sum(1 << bit for bit in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_MAKE_REG_AND_DIR = (1 << 7) | (1 << 8)


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock version (0: none, or not enabled at boot)."""
    try:
        version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def _write_only_beneath(folder: Path) -> int | None:
    """A Landlock ruleset (its fd) that allows writing files only beneath `folder`, no TCP, no signals
    or abstract sockets outside; None where the kernel has no Landlock."""
    abi = landlock_abi()
    if abi < 1:
        return None
    writes = _FS_WRITE_FILE | _FS_REMOVE_DIR | _FS_REMOVE_FILE | _FS_MAKE
    writes |= (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0) | (_FS_IOCTL_DEV if abi >= 5 else 0)
    attr = _RulesetAttr(
        handled_access_fs=writes,
        handled_access_net=(_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0,
        scoped=(_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0,
    )
    size = 8 if abi < 4 else 16 if abi < 6 else 24  # the struct as this ABI knows it
    libc = _libc()
    ruleset = libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    beneath = os.open(folder, os.O_PATH | os.O_CLOEXEC)
    try:
        allowed = (_FS_WRITE_FILE | _FS_REMOVE_FILE | _FS_REMOVE_DIR | _MAKE_REG_AND_DIR) & writes
        allowed |= _FS_TRUNCATE & writes
        rule = _PathBeneathAttr(allowed_access=allowed, parent_fd=beneath)
        if libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            os.close(ruleset)
            raise OSError(ctypes.get_errno(), "landlock_add_rule failed")
    finally:
        os.close(beneath)
    return int(ruleset)


def _restrict_self(ruleset: int) -> None:
    """Between fork and exec: no new privileges, then the ruleset for good (inherited by everything after)."""
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.syscall(_RESTRICT_SELF, ruleset, 0) != 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")


def _sandboxed(
    argv: list[str],
    *,
    cwd: Path,
    stdin_path: Path | None,
    stdout_path: Path,
    cpu_seconds: float,
    memory_bytes: int,
    file_bytes: int,
    open_files: int,
    processes: int | None,
    wall_seconds: float,
    env: dict[str, str],
    writable_only: Path | None = None,
) -> _Run:
    drop = os.geteuid() == 0
    ruleset = _write_only_beneath(writable_only) if writable_only is not None else None

    def setup() -> None:
        os.setsid()
        if drop:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        cpu = max(1, int(cpu_seconds + 0.999))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if processes is not None:
            # After the uid change: set before it, the kernel would count the change itself over the limit.
            resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
        if ruleset is not None:
            _restrict_self(ruleset)

    started = time.monotonic()
    stdin = stdin_path.open("rb") if stdin_path is not None else subprocess.DEVNULL
    try:
        with stdout_path.open("wb") as stdout, tempfile.TemporaryFile() as stderr:
            try:
                proc = subprocess.Popen(  # noqa: S603 - argv is rustc or the binary it just built
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=stdin,
                    stdout=stdout,
                    stderr=stderr,
                    preexec_fn=setup,
                    close_fds=True,
                )
            finally:
                if ruleset is not None:
                    os.close(ruleset)
            timed_out = False
            try:
                proc.wait(timeout=wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            stderr.seek(0)
            text = stderr.read(64 * 1024).decode("utf-8", "replace")
    finally:
        if stdin_path is not None:
            stdin.close()  # type: ignore[union-attr]
    return _Run(proc.returncode, timed_out, time.monotonic() - started, text)


def workdir(parent: Path | None = None) -> Path:
    """A fresh private folder for one answer (the judge's user's: nobody's when we are root)."""
    return _workdir(parent)


def _workdir(parent: Path | None) -> Path:
    if os.geteuid() == 0:
        # Steps run as nobody, who must reach the folder: root's own TMPDIR may be private.
        parent = Path("/tmp")  # noqa: S108 - a fresh 0700 folder of nobody's, made by mkdtemp
    folder = Path(tempfile.mkdtemp(prefix="rust-judge-", dir=parent))
    if os.geteuid() == 0:
        os.chown(folder, NOBODY, NOBODY)
    os.chmod(folder, 0o700)
    return folder


def _chown_tree(path: Path) -> None:
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)


def _env(folder: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(folder), "TMPDIR": str(folder), "LANG": "C.UTF-8"}


def _signal_reason(returncode: int, limits: Limits) -> str:
    number = -returncode
    if number == signal.SIGXCPU or number == signal.SIGKILL:
        return f"time limit exceeded ({limits.run_cpu_seconds:g} s of CPU)"
    if number == signal.SIGXFSZ:
        return f"output limit exceeded (wrote more than {limits.output_bytes // 1024**2} MB to a file or stdout)"
    if number == signal.SIGSEGV:
        return "crashed (segmentation fault: often a stack overflow or running out of memory)"
    if number == signal.SIGABRT:
        return "aborted (often running out of memory)"
    return f"killed by signal {signal.Signals(number).name if number in signal.Signals._value2member_map_ else number}"


def _tokens_equal(got: bytes, expected: str) -> bool:
    """Whitespace-insensitive, token by token: what CodeContests' checkers accept for these problems."""
    return got.split() == expected.encode().split()


def _first_difference(got: bytes, expected: str) -> str:
    got_tokens, want = got.split(), expected.encode().split()
    for index, (a, b) in enumerate(zip(got_tokens, want, strict=False)):
        if a != b:
            return f"token {index + 1}: got {a[:40].decode('utf-8', 'replace')!r}, expected {b[:40].decode()!r}"
    return f"{len(got_tokens)} tokens, expected {len(want)}"


def compile_rust(source: str, folder: Path, *, rustc: str, limits: Limits) -> tuple[Path | None, str]:
    """Build `source` in `folder`; (binary, "") or (None, why not)."""
    if len(source.encode()) > SOURCE_LIMIT_BYTES:
        return None, f"compile error: the source is larger than {SOURCE_LIMIT_BYTES // 1024} KB"
    main = folder / "main.rs"
    main.write_text(source)
    _chown_tree(main)
    binary = folder / "main"
    argv = [rustc, "--edition", "2021", "-C", f"opt-level={limits.opt_level}", "-C", "debuginfo=0"]
    argv += ["-o", str(binary), str(main)]
    run = _sandboxed(
        argv,
        cwd=folder,
        stdin_path=None,
        stdout_path=folder / "rustc.out",
        cpu_seconds=limits.compile_seconds,
        memory_bytes=limits.compile_memory_bytes,
        file_bytes=256 * 1024**2,
        open_files=256,
        processes=None,  # rustc runs the linker; it is our compiler, not the answer
        wall_seconds=limits.compile_seconds * 2,
        env=_env(folder),
    )
    if run.timed_out or (run.returncode is not None and run.returncode < 0 and not binary.exists()):
        return None, f"compile error: rustc ran past {limits.compile_seconds:g} s or out of memory"
    if run.returncode != 0 or not binary.exists():
        errors = [line for line in run.stderr.splitlines() if line.startswith("error")]
        first = errors[0] if errors else (run.stderr.strip().splitlines() or ["rustc failed"])[0]
        return None, f"compile error: {first[:300]}"
    return binary, ""


def run_one(binary: Path, given: str, case: Path, *, limits: Limits) -> tuple[_Run, bytes]:
    """Run `binary` on one input in the fresh folder `case` (removed afterwards); its run and its stdout."""
    case.mkdir()
    _chown_tree(case)
    stdin = case / "input.txt"
    stdin.write_text(given)
    stdout = case / "output.txt"
    try:
        run = _sandboxed(
            [str(binary)],
            cwd=case,
            stdin_path=stdin,
            stdout_path=stdout,
            cpu_seconds=limits.run_cpu_seconds,
            memory_bytes=limits.run_memory_bytes,
            file_bytes=limits.output_bytes,
            open_files=limits.open_files,
            processes=0,
            wall_seconds=limits.run_cpu_seconds * 2 + 1,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            writable_only=case,
        )
        with stdout.open("rb") as produced:
            got = produced.read(limits.output_bytes + 1)
    finally:
        shutil.rmtree(case, ignore_errors=True)
    return run, got


def failure_reason(run: _Run, got: bytes, expected: str, index: int, total: int, limits: Limits) -> str:
    """Why test `index` failed ("" if it passed): the verdict on one run and what it printed."""
    failed = f"test {index + 1} of {total}"
    if run.timed_out:
        return f"time limit exceeded on {failed} (ran past {limits.run_cpu_seconds * 2 + 1:g} s of wall time)"
    if run.returncode is not None and run.returncode < 0:
        return f"{_signal_reason(run.returncode, limits)} on {failed}"
    if run.returncode != 0:
        lines = run.stderr.strip().splitlines()
        said = next((line for line in lines if "panicked" in line), lines[-1] if lines else "")
        return f"runtime error on {failed} (exit status {run.returncode}){': ' + said[:200] if said else ''}"
    if not _tokens_equal(got, expected):
        return f"wrong answer on {failed}: {_first_difference(got, expected)}"
    return ""


def run_tests(binary: Path, tests: list[tuple[str, str]], folder: Path, *, limits: Limits) -> Verdict:
    """Run `binary` on each (input, expected output); stops at the first failing test."""
    started = time.monotonic()
    for index, (given, expected) in enumerate(tests):
        run, got = run_one(binary, given, folder / f"test-{index}", limits=limits)
        reason = failure_reason(run, got, expected, index, len(tests), limits)
        if reason:
            return Verdict(False, reason, index, len(tests), time.monotonic() - started)
    return Verdict(True, f"passed all {len(tests)} tests", len(tests), len(tests), time.monotonic() - started)


def verdict_from(report: dict[str, Any], outputs: Path, expected: list[str], *, limits: Limits) -> Verdict:
    """The verdict on runs made elsewhere (harness/judge_answer.py): `report` says how each run ended,
    `outputs/<index>.out` holds what it printed. Both come from where the answer ran: only their
    shapes are trusted, checked here; every expected output is ours."""
    total = len(expected)
    compile_error = report.get("compile_error")
    if compile_error:
        return Verdict(False, str(compile_error)[:400], 0, total)
    runs = report.get("runs")
    runs = runs if isinstance(runs, list) else []
    for index, want in enumerate(expected):
        if index >= len(runs) or not isinstance(runs[index], dict):
            return Verdict(False, f"no run of test {index + 1} of {total} came back from the judge", index, total)
        entry = runs[index]
        returncode = entry.get("returncode")
        run = _Run(
            returncode=returncode if isinstance(returncode, int) and not isinstance(returncode, bool) else None,
            timed_out=entry.get("timed_out") is True,
            seconds=0.0,
            stderr=str(entry.get("stderr") or "")[:4000],
        )
        got = b""
        if not run.ended_badly:
            path = outputs / f"{index}.out"
            if not path.is_file():
                return Verdict(False, f"the output of test {index + 1} of {total} did not come back", index, total)
            with path.open("rb") as produced:
                got = produced.read(limits.output_bytes + 1)
        reason = failure_reason(run, got, want, index, total, limits)
        if reason:
            return Verdict(False, reason, index, total)
    return Verdict(True, f"passed all {total} tests", total, total)


def harness_seconds(limits: Limits, tests: int) -> float:
    """The most compiling and running `tests` tests can take within the limits (the harness's timeout)."""
    return limits.compile_seconds * 2 + tests * (limits.run_cpu_seconds * 2 + 2) + 30


def problem_tests(problem: dict[str, Any], *, hidden: bool = True) -> list[tuple[str, str]]:
    """The tests the scorer judges with (public, private and generated) or only the public ones."""
    kinds = ("public_tests", "private_tests", "generated_tests") if hidden else ("public_tests",)
    out = []
    for kind in kinds:
        block = problem.get(kind) or {}
        out += list(zip(block.get("input") or [], block.get("output") or [], strict=False))
    return out


def precheck(source: str, tests: list[Any]) -> Verdict | None:
    """The verdicts that need no compiler: no program at all, or nothing to test it on."""
    if not source.strip():
        return Verdict(False, "no Rust program in the answer", 0, len(tests))
    if not tests:
        return Verdict(False, "the problem has no tests", 0, 0)
    return None


def judge(
    source: str,
    tests: list[tuple[str, str]],
    *,
    rustc: str,
    limits: Limits,
    scratch: Path | None = None,
) -> Verdict:
    """Compile and test one answer in a fresh folder, removed afterwards."""
    refused = precheck(source, tests)
    if refused is not None:
        return refused
    folder = _workdir(scratch)
    try:
        started = time.monotonic()
        binary, error = compile_rust(source, folder, rustc=rustc, limits=limits)
        if binary is None:
            return Verdict(False, error, 0, len(tests), time.monotonic() - started)
        verdict = run_tests(binary, tests, folder, limits=limits)
        verdict.seconds = time.monotonic() - started
        return verdict
    finally:
        shutil.rmtree(folder, ignore_errors=True)
