"""SSH workstation gate benchmark: what one of the site's calls costs the workstation, the gate against the former way.

The site reaches an SSH workstation through its gate (workstation/gate.py, root's forced command):
each call of the backend is one process there. The calls an open browser tab makes on its own are
a `control` every 10 s (trials.consumers.STATUS_CHECK_SECONDS) and a `pull` of its recording every
TERMINAL_RECORDING_UPLOAD_SECONDS; a terminal's open is `open` then `connect`. The peer is the
former SSH backend's way, the same calls as `python3 -m rebench_sandbox <verb> <state dir>` (the
stdlib-only sandbox package the backend copied to the SSH user's home, taken from git at
`--peer-commit`, its command line as it was then).

Both sides run on this machine against one running sandbox (a throwaway attempt), interleaved
call by call, without sshd (whose cost, a connection's channel, is the same for both): printed are
each call's wall time and CPU (the child's user + system) median and p90, the ratio, and what an
open tab costs the workstation's CPU per minute at the consumer's rates.

Run as root: .venv/bin/python benchmarks/ssh_gate.py [--calls 40] [--peer-commit 31da722]
Everything it makes (a user rbgate<pid>-a900001, its sandbox, a scratch folder under /tmp) is removed
at the end. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ATTEMPT = 900001
CONTROLS_PER_MINUTE = 6  # STATUS_CHECK_SECONDS = 10
PULLS_PER_MINUTE = 2  # TERMINAL_RECORDING_UPLOAD_SECONDS = 30


def settings_environment(scratch: Path, prefix: str) -> dict[str, str]:
    """The workstation's settings for a throwaway site: every path in the scratch folder."""
    return {
        "DATA_DIR": str(scratch / "data"),
        "PROTECTED_DIR": str(scratch / "protected"),
        "TERMINAL_WORKSPACE_ROOT": str(scratch / "workspaces"),
        "TERMINAL_HOLDER_DIR": str(scratch / "terminals"),
        "SANDBOX_STATE_DIR": str(scratch / "sandboxes"),
        "SANDBOX_TOOLS_DIR": str(scratch / "tools"),
        "SSH_ACCESS_KEYS_DIR": str(scratch / "keys"),
        "TERMINAL_TMUX_SOCKET_PREFIX": prefix,
        "TERMINAL_ATTEMPT_USER_PREFIX": f"{prefix}-",
        "TERMINAL_ATTEMPT_USERS": "true",
        "LOG_LEVEL": "WARNING",
    }


def timed(argv: list[str], *, stdin: bytes = b"", env: dict[str, str] | None = None) -> tuple[float, float, bytes]:
    """(wall seconds, CPU seconds of the child, its stdout); the child must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    result = subprocess.run(argv, input=stdin, capture_output=True, env=env, cwd=ROOT, check=False)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{argv[:6]} failed: {result.stderr.decode(errors='replace')[-800:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stdout


def peer_package(scratch: Path, commit: str) -> Path:
    """The former sandbox package (as the SSH backend copied it to workstations) from git, as rebench_sandbox."""
    lib = scratch / "peer-lib"
    target = lib / "rebench_sandbox"
    target.mkdir(parents=True)
    listed = subprocess.run(
        ["git", "ls-tree", "--name-only", commit, "workstation/sandbox/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for path in listed.stdout.split():
        if path.endswith(".py"):
            shown = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, capture_output=True, check=True)
            (target / Path(path).name).write_bytes(shown.stdout)
    return lib


def summary(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--peer-commit", default="31da722")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("Run as root: the gate makes the attempt's user and its sandbox.", file=sys.stderr)
        sys.exit(2)
    load = os.getloadavg()[0]
    prefix = f"rbgate{os.getpid()}"
    scratch = Path(tempfile.mkdtemp(prefix="rebench-gate-bench-", dir="/tmp"))
    scratch.chmod(0o755)
    values = settings_environment(scratch, prefix)
    env_file = scratch / "worker.env"
    env_file.write_text("".join(f'{name}="{value}"\n' for name, value in values.items()))
    base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    gate = [sys.executable, "-m", "workstation.gate", "--env", str(env_file)]
    lib = peer_package(scratch, args.peer_commit)
    peer = ["/usr/bin/python3", "-m", "rebench_sandbox"]
    peer_env = {**base_env, "PYTHONPATH": str(lib)}
    state = str(scratch / "sandboxes" / f"{prefix}-a{ATTEMPT}")
    control = json.dumps({"version": 1, "paused": False}).encode() + b"\n"
    calls: dict[str, tuple[list[str], bytes, dict[str, str]]] = {
        "control, gate": ([*gate, "control", str(ATTEMPT)], control, base_env),
        "control, former": ([*peer, "control", state], control, peer_env),
        "status, gate": ([*gate, "status", str(ATTEMPT)], b"", base_env),
        "status, former": ([*peer, "status", state], b"", peer_env),
        "pull, gate": ([*gate, "pull", str(ATTEMPT), "1", "0"], b"", base_env),
    }
    try:
        # The sandbox both sides speak of, brought up through the gate as the site's `open` does.
        request = {"sandbox": {}, "control": {"version": 1}, "record": True, "cols": 80, "rows": 24}
        timed([*gate, "open", str(ATTEMPT), "1"], stdin=json.dumps(request).encode() + b"\n", env=base_env)
        walls: dict[str, list[float]] = {name: [] for name in calls}
        cpus: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(args.calls):
            for name, (argv, stdin, env) in calls.items():
                wall, cpu, _out = timed(argv, stdin=stdin, env=env)
                walls[name].append(wall)
                cpus[name].append(cpu)
        print(f"load average at the start {load:.2f}, at the end {os.getloadavg()[0]:.2f}; {args.calls} calls each")
        print(f"{'call':<18} {'wall p50':>9} {'wall p90':>9} {'CPU p50':>9} {'CPU p90':>9}")
        for name in calls:
            wall50, wall90 = summary(walls[name])
            cpu50, cpu90 = summary(cpus[name])
            print(
                f"{name:<18} {wall50 * 1000:7.1f}ms {wall90 * 1000:7.1f}ms {cpu50 * 1000:7.1f}ms {cpu90 * 1000:7.1f}ms"
            )
        for verb in ("control", "status"):
            ours, former = summary(walls[f"{verb}, gate"])[0], summary(walls[f"{verb}, former"])[0]
            ours_cpu, former_cpu = summary(cpus[f"{verb}, gate"])[0], summary(cpus[f"{verb}, former"])[0]
            print(f"{verb}: gate / former  wall {ours / former:.2f}x  CPU {ours_cpu / former_cpu:.2f}x")
        per_tab = (
            CONTROLS_PER_MINUTE * summary(cpus["control, gate"])[0] + PULLS_PER_MINUTE * summary(cpus["pull, gate"])[0]
        )
        former_tab = CONTROLS_PER_MINUTE * summary(cpus["control, former"])[0]
        print(
            f"an open tab costs the workstation {per_tab:.2f} CPU-s a minute through the gate "
            f"({per_tab / 60 * 100:.2f}% of a core; the former control calls alone {former_tab:.2f} CPU-s, "
            "its pulls a `tail` each)"
        )
    finally:
        subprocess.run([*gate, "end", str(ATTEMPT)], env=base_env, capture_output=True, check=False, cwd=ROOT)
        drop = f"from workstation.sandbox import stop; stop({state!r}, remove=True)"
        subprocess.run(
            [sys.executable, "-c", drop], env={**base_env, "PYTHONPATH": str(ROOT)}, capture_output=True, check=False
        )
        subprocess.run(["userdel", f"{prefix}-{ATTEMPT}"], capture_output=True, check=False)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
