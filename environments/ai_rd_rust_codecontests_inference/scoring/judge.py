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

Each step's sandbox (the rlimits, `nobody`, Landlock) is judge_sandbox.py, beside this file in every
place the judge runs: the scorer's folder, the harness's inputs and the expert's workspace.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Beside this file wherever it runs (see above); judge_answer.py and the tests call landlock_abi and
# workdir as the judge's own.
from judge_sandbox import _chown_tree, _Run, _sandboxed, _workdir
from judge_sandbox import landlock_abi as landlock_abi
from judge_sandbox import workdir as workdir

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
