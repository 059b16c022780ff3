"""Sandbox benchmark: an attempt's sandboxed shells and processes against the same things unsandboxed.

Four comparisons in one run, each printed side by side with its ratio and its target:

1. shell start, from asking for a terminal to the first prompt byte: sandboxed cold
   (`LocalBackend.open` of a fresh attempt whose user exists: keeper, bubblewrap, the terminal's
   holder), sandboxed warm (a second terminal of an attempt whose sandbox runs: its holder alone),
   and the unsandboxed peer: a holder started the same way (`holder.start_argv`, the same tool,
   python3, environment, connect and hello) but run as the attempt's user with /bin/bash itself on
   its PTY instead of the sandbox's attach client, first and second terminal. Then where an open's
   time goes, step by step (users, tools, keeper + bwrap, token, holder start, connect, first byte,
   prompt), warm and for a fresh attempt, and what the holder's PTY runs, started alone on a PTY.
2. keystroke echo p50/p99 through a HolderShell on the holder's socket (terminal.py's echo test,
   no WebSocket): the sandboxed terminal against the unsandboxed peer's (bash directly under a
   holder), same shell user, interleaved key by key (the line cleared every 50 keys), with a
   bootstrap interval of the gap: on a loaded host the tails are mostly the host's.
3. throughput, same user (the attempt's) and same binary (the sandbox's python3): inside a sandbox
   instance of the attempt's policy (`sandbox.launch`: bubblewrap and the attempt's cgroup with its
   caps) against a plain setuid process (no namespaces, no cgroup): a single-threaded CPU loop, a
   numpy copy of a 256 MB array, and untar + `compileall` of this interpreter's standard library in
   the workspace. Runs interleaved (ABAB…), medians compared; cross-checked by each round's own
   ratio and by work per CPU-second.
4. GPU, where `nvidia-smi` works: a CUDA matmul inside (one GPU assigned) and outside, and that the
   sandbox sees exactly one GPU.

Echo and throughput add a diagnosis column, not judged: the same sandbox with its cgroup under a
parent of its own instead of the site's (`SANDBOX_CGROUP_PARENT`, shared by every attempt's sandbox
on the host), which tells the sandbox's own cost from the CPU weight its siblings take.

Run as root: .venv/bin/python benchmarks/sandbox.py [--quick] [--repeats 20] [--keys 500] [--rounds 6]
Everything it makes (users rbbench<pid>-9000NN, their holders, sandboxes and cgroups, a scratch
folder under /tmp) is removed at the end. The machine is shared: figures are for comparing within one
run. Not a test.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import dataclasses
import fcntl
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import termios
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASE_ATTEMPT = 900001
PROMPT_SECONDS = 30.0
SETTLE_SECONDS = 0.3  # between two opens: a second terminal is never asked for in the same millisecond
ECHO_BLOCK = 50  # keys between two Ctrl-U (the line never wraps), as terminal.py

WARM_TARGET_MS = 150.0
ECHO_TARGET_MS = 0.2
SPEED_TARGET = 0.97

# The workload both sides run: the same script, the same python3, the same user.
WORK = textwrap.dedent(
    """
    import json, os, resource, shutil, subprocess, sys, tempfile, time

    def cpu(count):
        x = 0
        began, cpu_began = time.perf_counter(), time.process_time()
        for i in range(count):
            x = (x * 31 + i) & 0xFFFFFFFF
        seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu_began
        return {"value": count / seconds, "cpu": count / cpu_seconds, "check": x}

    def memory(megabytes, repeats):
        import numpy as np
        a = np.ones(megabytes * 2**20 // 8)
        b = np.empty_like(a)
        np.copyto(b, a)  # pages touched before the clock starts
        began, cpu_began = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            np.copyto(b, a)
        seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu_began
        return {"value": repeats * a.nbytes / seconds / 1e9, "cpu": repeats * a.nbytes / cpu_seconds / 1e9}

    def files(tarball, base):
        dest = tempfile.mkdtemp(prefix="tree-", dir=base)
        try:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            began = time.perf_counter()
            subprocess.run(["tar", "-xf", tarball, "-C", dest], check=True)
            result = subprocess.run([sys.executable, "-m", "compileall", "-q", dest], stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - began
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_seconds = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            compiled = sum(len(names) for folder, _, names in os.walk(dest) if folder.endswith("__pycache__"))
        finally:
            shutil.rmtree(dest, ignore_errors=True)
        return {"value": seconds, "cpu": cpu_seconds, "compiled": compiled, "rc": result.returncode}

    def gpu(size, repeats):
        import torch
        count = torch.cuda.device_count()
        if not torch.cuda.is_available() or count == 0:
            return {"value": 0.0, "count": count, "error": "CUDA is not available to torch"}
        a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
        for _ in range(3):
            a @ b
        torch.cuda.synchronize()
        began = time.perf_counter()
        for _ in range(repeats):
            a @ b
        torch.cuda.synchronize()
        seconds = time.perf_counter() - began
        flops = 2 * size**3 * repeats / seconds / 1e12
        return {"value": flops, "cpu": flops, "count": count, "name": torch.cuda.get_device_name(0)}

    mode, *rest = sys.argv[1:]
    if mode == "cpu":
        out = cpu(int(rest[0]))
    elif mode == "memory":
        out = memory(int(rest[0]), int(rest[1]))
    elif mode == "files":
        out = files(rest[0], rest[1])
    else:
        out = gpu(int(rest[0]), int(rest[1]))
    print(json.dumps(out))
    """
)


def load_terminal_benchmark() -> Any:
    """benchmarks/terminal.py, for its raw PTY reader and its echo-latency measurement."""
    spec = importlib.util.spec_from_file_location("bench_terminal", ROOT / "benchmarks" / "terminal.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def configure_django(scratch: Path, prefix: str) -> None:
    """Settings for a throwaway site: every path in the scratch folder, every name under `prefix`."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "rebench_site.settings",
            "DATA_DIR": str(scratch / "data"),
            "DATABASE_URL": "",
            "REDIS_URL": "",
            "MEDIA_ROOT": str(scratch / "media"),
            "PROTECTED_DIR": str(scratch / "protected"),
            "TERMINAL_RECORDING_SPOOL": str(scratch / "spool"),
            "TERMINAL_WORKSPACE_ROOT": str(scratch / "workspaces"),
            "SANDBOX_STATE_DIR": str(scratch / "sandboxes"),
            "SANDBOX_TOOLS_DIR": str(scratch / "tools"),
            "TERMINAL_TMUX_SOCKET_PREFIX": prefix,
            "TERMINAL_ATTEMPT_USER_PREFIX": f"{prefix}-",
            "TERMINAL_ATTEMPT_USERS": "true",
            "SANDBOX_ALLOW_UNSAFE": "false",
            "SANDBOX_MEMORY_GB": "0",  # the attempt's cap is the host's memory: generous, the loops never meet it
            "LOG_LEVEL": "WARNING",
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def bootstrap(
    a: list[float], b: list[float], statistic: Any, resamples: int = 2000, *, ratio: bool = False
) -> tuple[float, float]:  # fmt: skip
    """95% interval of statistic(a) − statistic(b) (or ÷ with `ratio`), each side resampled on its own:
    how much of a gap is noise."""
    rng = random.Random(0)
    gaps = []
    for _ in range(resamples):
        x, y = statistic(rng.choices(a, k=len(a))), statistic(rng.choices(b, k=len(b)))
        gaps.append(x / y if ratio else x - y)
    gaps.sort()
    return gaps[int(0.025 * resamples)], gaps[int(0.975 * resamples) - 1]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Bench:
    def __init__(self, args: argparse.Namespace, scratch: Path, prefix: str) -> None:
        from workstation import holder, layout, policy, sandbox, users, workspaces
        from workstation.backends import SandboxRequest, ShellSpec
        from workstation.backends import local as local_backend
        from workstation.policy import local_policy, python_binds

        self.holder, self.layout, self.policy, self.sandbox, self.users = holder, layout, policy, sandbox, users
        self.workspaces = workspaces
        self.SandboxRequest, self.ShellSpec, self.local = SandboxRequest, ShellSpec, local_backend
        self.local_policy, self.python_binds = local_policy, python_binds
        self.term = load_terminal_benchmark()
        self.args = args
        self.scratch = scratch
        self.prefix = prefix
        self.backend = local_backend.LocalBackend()
        # Attempt ids: the start-time repeats (the first one a warm-up), then echo, throughput, GPU,
        # then the breakdown's fresh attempts (their users made by the open itself, not beforehand).
        self.start_ids = [BASE_ATTEMPT + i for i in range(args.repeats + 1)]
        self.echo_id = BASE_ATTEMPT + args.repeats + 1
        self.gpu_id = self.echo_id + 1
        self.own_id = self.echo_id + 2  # the echo's diagnosis column
        self.fresh_ids = [self.echo_id + 3 + i for i in range(self.breakdown_count())]
        self.all_ids = [*self.start_ids, self.echo_id, self.gpu_id, self.own_id, *self.fresh_ids]
        self.shell_users: dict[int, Any] = {}
        self.launched: list[Any] = []  # policies whose cgroups launch() may have made
        # The diagnosis columns' cgroup parent: like the site's, but no other attempt's sandbox under it.
        self.own_parent = f"{prefix}-parent"
        self.clients: list[Any] = []
        self.results: dict[str, Any] = {}

    def breakdown_count(self) -> int:
        return max(3, min(self.args.repeats, 10))

    # --- terminals ---------------------------------------------------------------------------

    def holder_client(self, shell: Any) -> Any:
        """terminal.py's Client interface on a HolderShell (the site's, or the unsandboxed peer's)."""
        base: Any = self.term.Client  # terminal.py's, loaded at run time

        class HolderClient(base):
            fd = -1

            def __init__(self) -> None:
                self.shell = shell

            async def send(self, text: str) -> None:
                await self.shell.write(text.encode())

            async def recv(self) -> bytes:
                return await self.shell.read()

            async def close(self) -> None:
                await self.shell.close()

        made = HolderClient()
        self.clients.append(made)
        return made

    def pty_client(self, process: subprocess.Popen[bytes] | None, fd: int) -> Any:
        """terminal.py's raw PTY reader on a PTY of ours (a process started on it, or a PTY handed over)."""
        raw_pty_client: Any = self.term.RawPtyClient  # terminal.py's, loaded at run time

        class PtyClient(raw_pty_client):
            def __init__(self) -> None:
                self.process, self.pid, self.fd = process, process.pid if process else 0, fd
                os.set_blocking(fd, False)

            async def close(self) -> None:
                with contextlib.suppress(OSError):
                    os.close(self.fd)
                if self.process is None:
                    return
                try:
                    await asyncio.to_thread(self.process.wait, 5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    await asyncio.to_thread(self.process.wait)

        made = PtyClient()
        self.clients.append(made)
        return made

    async def close(self, client: Any) -> None:
        await client.close()
        with contextlib.suppress(ValueError):
            self.clients.remove(client)

    def spec(self, attempt_id: int, number: int) -> Any:
        return self.ShellSpec(
            attempt_id=attempt_id,
            number=number,
            sandbox=self.SandboxRequest(attempt_id=attempt_id),
            token="benchmark-token",  # noqa: S106 - the relay's credential file, never used
        )

    async def open_sandboxed(self, attempt_id: int, number: int) -> Any:
        """LocalBackend.open, as the terminal consumer calls it: keeper + bwrap (if not running) + holder + connect."""
        return self.holder_client(await self.backend.open(self.spec(attempt_id, number)))

    async def attach(self, path: Path) -> Any:
        """Connect to a holder's socket and say hello, as LocalBackend.open does; its HolderShell."""
        connection = await self.local._connect(path)
        if connection is None:
            raise RuntimeError(f"no holder listens at {path}")
        reader, writer = connection
        writer.write(self.holder.hello(readonly=False, cols=80, rows=24))

        async def closer() -> None:
            writer.close()
            await writer.wait_closed()

        return self.holder.HolderShell(reader, writer, closer)

    def plain_dir(self, attempt_id: int) -> Path:
        return self.scratch / "plain" / self.layout.sandbox_name(attempt_id)

    def _plain_start(self, attempt_id: int, number: int) -> Path:
        """The peer's holder: started as the site starts one (holder.start_argv, the same tool, python3,
        environment and replay), but run as the attempt's user with /bin/bash itself on its PTY, no sandbox."""
        from django.conf import settings

        user = self.shell_users[attempt_id]
        folder = self.plain_dir(attempt_id)
        folder.parent.mkdir(mode=0o755, exist_ok=True)
        self.workspaces.make_folder(folder, uid=user.uid, gid=user.gid)
        path = folder / self.holder.socket_name(number)
        argv = self.holder.start_argv(
            python=self.local.system_python(),
            tool=str(self.layout.tools_dir() / self.holder.TOOL),
            socket=str(path),
            spool="",  # the sandboxed side's spec records nothing either
            cols=80,
            rows=24,
            replay_bytes=settings.TERMINAL_REPLAY_BYTES,
            attach=["/bin/bash"],
        )
        result = subprocess.run(  # the site's holder, with arguments we build
            argv, capture_output=True, check=False, timeout=15, env=self.local.holder_env(), cwd="/",
            user=user.uid, group=user.gid, extra_groups=[],
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"the unsandboxed holder failed: {result.stderr.decode(errors='replace').strip()}")
        return path

    async def open_plain(self, attempt_id: int, number: int) -> Any:
        """The peer: a holder started the same way (in a thread, as LocalBackend.open starts one), connected
        and greeted the same way, but holder and bash run as the attempt's user, bash directly on its PTY."""
        path = await asyncio.to_thread(self._plain_start, attempt_id, number)
        return self.holder_client(await self.attach(path))

    async def until_prompt(self, client: Any, user_name: str, seen: bytes = b"") -> float:
        """The moment bash's prompt (`user@host:dir$`, /etc/bash.bashrc's) arrives through the client."""
        pattern = re.compile(re.escape(user_name.encode()) + rb"@[^\r\n]*?\$")
        if pattern.search(seen):
            return time.perf_counter()
        while not pattern.search(seen):
            chunk = await asyncio.wait_for(client.recv(), PROMPT_SECONDS)
            if not chunk:
                raise RuntimeError(f"the terminal closed before its prompt: {seen[-300:]!r}")
            seen = (seen + chunk)[-16384:]
        return time.perf_counter()

    async def timed_open(self, kind: str, attempt_id: int, number: int) -> float:
        began = time.perf_counter()
        opener = self.open_sandboxed if kind == "sandboxed" else self.open_plain
        client = await opener(attempt_id, number)
        shown = await self.until_prompt(client, self.user_name(attempt_id))
        await self.close(client)
        return (shown - began) * 1000

    def user_name(self, attempt_id: int) -> str:
        user = self.shell_users.get(attempt_id)
        return user.name if user is not None else self.users.attempt_user_name(attempt_id)

    def end_attempt(self, attempt_id: int) -> None:
        """End the attempt as the site does (holders, keeper, cgroup), drop its state folder, end the peer's holders."""
        with contextlib.suppress(Exception):
            self.local.end_attempt_sync(attempt_id)
        self.sandbox.stop(str(self.layout.sandbox_dir(attempt_id)), remove=True)
        folder = self.plain_dir(attempt_id)
        if folder.is_dir():
            argv = self.holder.stop_argv(
                python=self.local.system_python(),
                tool=str(self.layout.tools_dir() / self.holder.TOOL),
                directory=str(folder),
            )
            subprocess.run(argv, capture_output=True, check=False, timeout=15)  # as root: ends any user's holder
            deadline = time.monotonic() + 5
            while list(folder.glob("*.pid")) and time.monotonic() < deadline:
                time.sleep(0.05)  # each holder removes its pid file as it exits
            shutil.rmtree(folder, ignore_errors=True)

    # --- 1. shell start ---------------------------------------------------------------------------

    async def shell_start(self) -> None:
        repeats = self.args.repeats
        print(f"\n1. shell start: asking for a terminal → first prompt byte ({repeats} repeats, 1 warm-up not counted)")
        kinds = ("sandboxed cold", "sandboxed warm", "plain cold", "plain warm")
        times: dict[str, list[float]] = {k: [] for k in kinds}
        for index, attempt_id in enumerate(self.start_ids):
            order = ("sandboxed", "plain") if index % 2 == 0 else ("plain", "sandboxed")
            try:
                for kind in order:
                    for number, state in ((1, "cold"), (2, "warm")):
                        ms = await self.timed_open(kind, attempt_id, number)
                        if index:
                            times[f"{kind} {state}"].append(ms)
                        await asyncio.sleep(SETTLE_SECONDS)
            finally:
                await asyncio.to_thread(self.end_attempt, attempt_id)
        names = {
            "sandboxed cold": "sandboxed, cold (keeper + bwrap + holder)",
            "sandboxed warm": "sandboxed, warm (2nd terminal: holder)",
            "plain cold": "unsandboxed, 1st terminal (holder + bash)",
            "plain warm": "unsandboxed, 2nd terminal (holder + bash)",
        }
        print("  unsandboxed: a holder started as the site starts one, running /bin/bash directly as the"
              " attempt's user (no keeper, no bwrap, no attach client)")  # fmt: skip
        print(f"  {'':<48} {'median':>9} {'p90':>9}")
        stats = {}
        for key, values in times.items():
            stats[key] = (statistics.median(values), self.term.pct(values, 90))
            print(f"  {names[key]:<48} {stats[key][0]:7.1f} ms {stats[key][1]:7.1f} ms")
        warm_ratio = stats["sandboxed warm"][0] / stats["plain warm"][0]
        cold_ratio = stats["sandboxed cold"][0] / stats["plain cold"][0]
        warm = stats["sandboxed warm"]
        print(f"  ratio sandboxed/unsandboxed: warm {warm_ratio:.2f}×, cold {cold_ratio:.2f}×;"
              f" target sandboxed warm < {WARM_TARGET_MS:.0f} ms: {verdict(warm[0] < WARM_TARGET_MS)}"
              f" (median; p90 {warm[1]:.1f} ms)", flush=True)  # fmt: skip
        low, high = bootstrap(times["sandboxed warm"], [0.0], statistics.median)
        gap_low, gap_high = bootstrap(times["sandboxed warm"], times["plain warm"], statistics.median)
        print(f"  noise: 95% bootstrap interval of the sandboxed warm median [{low:.1f}, {high:.1f}] ms;"
              f" of what the sandbox adds to a warm open [{gap_low:+.1f}, {gap_high:+.1f}] ms", flush=True)  # fmt: skip
        self.results["start"] = {**stats, "warm_interval": (low, high)}

    async def stepped_open(self, attempt_id: int, number: int, add: Any) -> None:
        """LocalBackend.open, its steps timed one by one with its own functions (sandbox_up's inlined)."""
        spec = self.spec(attempt_id, number)
        t0 = time.perf_counter()
        found = await asyncio.to_thread(self.local_policy, spec.sandbox)  # makes the attempt's user if missing
        t1 = time.perf_counter()

        def tools_and_workspace() -> None:
            self.layout.install_tools()
            self.local.prepare_workspace(attempt_id, self.users.ShellUser("", found.uid, found.gid, ""))

        await asyncio.to_thread(tools_and_workspace)
        t2 = time.perf_counter()
        command, env = self.policy.launcher()
        await asyncio.to_thread(self.sandbox.ensure, found, command, env=env)
        t3 = time.perf_counter()
        terminal_user = self.local.terminal_user()
        self.sandbox.set_token(found.state_dir, spec.token, uid=terminal_user.uid)
        t4 = time.perf_counter()
        path = await asyncio.to_thread(self.local._start_holder, spec, found, terminal_user)
        t5 = time.perf_counter()
        client = self.holder_client(await self.attach(path))
        t6 = time.perf_counter()
        first = await asyncio.wait_for(client.recv(), PROMPT_SECONDS)
        t7 = time.perf_counter()
        shown = await self.until_prompt(client, self.user_name(attempt_id), first)
        await self.close(client)
        add("users + policy (local_policy)", t1 - t0)
        add("tools + workspace", t2 - t1)
        add("keeper + bwrap (sandbox.ensure)", t3 - t2)
        add("terminal user + set_token", t4 - t3)
        add("holder start (term_holder start returns)", t5 - t4)
        add("connect + hello", t6 - t5)
        add("first byte from the holder", t7 - t6)
        add("prompt after first byte", shown - t7)
        add("total", shown - t0)

    async def breakdown(self) -> None:
        """Where an open's time goes, warm and cold, step by step; and what the holder's PTY runs, alone."""
        count = self.breakdown_count()
        attempt_id = self.echo_id  # running (the echo measurement's sandbox)
        warm: dict[str, list[float]] = {}
        cold: dict[str, list[float]] = {}

        def adder(steps: dict[str, list[float]]) -> Any:
            def add(name: str, seconds: float) -> None:
                steps.setdefault(name, []).append(seconds * 1000)

            return add

        for number in range(10, 10 + count):
            await self.stepped_open(attempt_id, number, adder(warm))
            await asyncio.sleep(SETTLE_SECONDS)
        # A fresh attempt each time: no user yet (useradd in local_policy), no keeper, no cgroup.
        for fresh in self.fresh_ids:
            try:
                await self.stepped_open(fresh, 1, adder(cold))
            finally:
                await asyncio.to_thread(self.end_attempt, fresh)
            await asyncio.sleep(SETTLE_SECONDS)
        # What the holder's PTY runs, alone on a PTY (no holder): the attach client handing it to the
        # running spawner, to the sandboxed bash's prompt; the unsandboxed peer's bash as the attempt's
        # user; and the hand-over alone, from this process (no attach client's start-up).
        direct: dict[str, list[float]] = {}
        add = adder(direct)
        for _ in range(count):
            for name, (argv, as_terminal_user) in self.pty_commands(attempt_id).items():
                add(name, await self.direct(argv, attempt_id, as_terminal_user=as_terminal_user))
                await asyncio.sleep(0.05)
            add("no client: this process hands a PTY to the spawner", await self.handoff(attempt_id))
            await asyncio.sleep(0.05)
        print(f"\n   where a sandboxed open's time goes ({count} times each, medians): LocalBackend.open's steps in"
              " sequence; warm = a new terminal of a running sandbox, cold = a fresh attempt (its user made"
              " by the open). The holder starts the attach client → spawner → bash chain on its PTY and"
              " returns once it listens, so that chain runs alongside connect and the first byte:")  # fmt: skip
        print(f"     {'':<48} {'warm':>9} {'cold':>9}")
        for name, values in warm.items():
            print(f"     {name:<48} {statistics.median(values):6.1f} ms {statistics.median(cold[name]):6.1f} ms")
        print("   what a holder's PTY runs, started alone on a PTY (no holder) until bash's prompt shows on it:")
        for name, values in direct.items():
            print(f"     {name:<56} {statistics.median(values):7.1f} ms")
        self.results["breakdown"] = {
            "warm": {k: statistics.median(v) for k, v in warm.items()},
            "cold": {k: statistics.median(v) for k, v in cold.items()},
            "direct": {k: statistics.median(v) for k, v in direct.items()},
        }

    def pty_commands(self, attempt_id: int) -> dict[str, tuple[list[str], bool]]:
        """name → (argv, run as the terminal user)."""
        attach = self.holder.attach_argv(
            python=self.local.system_python(),
            spawner=str(self.layout.tools_dir() / self.sandbox.SPAWNER),
            spawn_socket=str(self.layout.sandbox_dir(attempt_id) / self.sandbox.SPAWN_SOCKET),
            number=99,
        )
        return {
            "attach → sandboxed bash, as the holder runs it": (attach, True),
            "/bin/bash as the attempt's user (the peer)": (["/bin/bash"], False),
        }

    async def spawn_on_pty(self, argv: list[str], user: Any) -> tuple[subprocess.Popen[bytes], int]:
        """`argv` as `user` on a fresh 80×24 PTY (its controlling terminal) in the holder's environment."""
        master, slave = os.openpty()
        try:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
            os.fchown(slave, user.uid, user.gid)

            def start() -> subprocess.Popen[bytes]:
                return subprocess.Popen(
                    argv, stdin=slave, stdout=slave, stderr=slave, cwd="/", env=self.local.holder_env(),
                    start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
                    close_fds=True, user=user.uid, group=user.gid, extra_groups=[],
                )  # fmt: skip

            process = await asyncio.to_thread(start)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return process, master

    async def direct(self, argv: list[str], attempt_id: int, *, as_terminal_user: bool) -> float:
        """Seconds from starting `argv` on a fresh PTY to bash's prompt on it."""
        user = self.local.terminal_user() if as_terminal_user else self.shell_users[attempt_id]
        began = time.perf_counter()
        process, master = await self.spawn_on_pty(argv, user)
        client = self.pty_client(process, master)
        try:
            shown = await self.until_prompt(client, self.user_name(attempt_id))
        finally:
            await self.close(client)
        return shown - began

    async def handoff(self, attempt_id: int) -> float:
        """Seconds from passing a fresh PTY to the running spawner (as attach does, from this process) to the prompt."""
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        terminal_user = self.local.terminal_user()
        os.fchown(slave, terminal_user.uid, terminal_user.gid)
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        began = time.perf_counter()
        try:
            connection.connect(str(self.layout.sandbox_dir(attempt_id) / self.sandbox.SPAWN_SOCKET))
            request = json.dumps({"term": "xterm-256color", "terminal": 99}).encode()
            connection.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [slave]))])
            os.close(slave)
            slave = -1
            reader = self.pty_client(None, master)
            shown = await self.until_prompt(reader, self.user_name(attempt_id))
            await self.close(reader)
        finally:
            if slave >= 0:
                os.close(slave)
            connection.close()
        return shown - began

    @contextlib.contextmanager
    def own_parent_settings(self) -> Any:
        from django.conf import settings

        site = settings.SANDBOX_CGROUP_PARENT
        settings.SANDBOX_CGROUP_PARENT = self.own_parent
        try:
            yield
        finally:
            settings.SANDBOX_CGROUP_PARENT = site

    # --- 2. echo ------------------------------------------------------------------------------------

    async def echo(self) -> None:
        keys = self.args.keys
        attempt_id = self.echo_id
        user = self.shell_users[attempt_id]
        print(f"\n2. keystroke echo through a HolderShell (the holder's socket, no WebSocket; {keys} keys each,"
              " interleaved key by key, the order rotated every key): the sandboxed terminal against a holder"
              " running bash directly as the attempt's user; diagnosis column: a sandboxed terminal of another"
              f" attempt whose cgroup is under a parent of its own ({self.own_parent})")  # fmt: skip
        sandboxed = await self.open_sandboxed(attempt_id, 1)
        await self.until_prompt(sandboxed, user.name)
        plain = await self.open_plain(attempt_id, 1)
        await self.until_prompt(plain, user.name)
        # Diagnosis: another attempt's sandboxed terminal whose cgroup sits under a parent of its own.
        with self.own_parent_settings():
            own = await self.open_sandboxed(self.own_id, 1)
        await self.until_prompt(own, self.shell_users[self.own_id].name)
        clients = {"sandboxed": sandboxed, "plain": plain, "own": own}
        for client in clients.values():
            await self.term.prepare(client)
        latencies: dict[str, list[float]] = {name: [] for name in clients}
        names = list(clients)
        for i in range(keys):
            key = "abcdefghijklmnopqrstuvwxyz"[i % 26]
            for name in names[i % 3 :] + names[: i % 3]:
                client = clients[name]
                began = time.perf_counter()
                await client.send(key)
                while key.encode() not in await asyncio.wait_for(client.recv(), 10):  # terminal.py's echo test
                    pass
                latencies[name].append((time.perf_counter() - began) * 1000)
            if i % ECHO_BLOCK == ECHO_BLOCK - 1:
                for client in clients.values():
                    await client.send("\x15")  # Ctrl-U: clear the line so it never wraps
                await asyncio.sleep(0.05)
                for client in clients.values():
                    await self.term.drain(client, 0.05)
        for client in clients.values():
            await self.close(client)
        stats = {n: (statistics.median(v), self.term.pct(v, 99)) for n, v in latencies.items()}
        labels = (
            ("sandboxed", "sandboxed terminal"),
            ("plain", "unsandboxed: bash direct"),
            ("own", "diagnosis: own parent"),
        )
        for name, label in labels:
            p90, worst = self.term.pct(latencies[name], 90), max(latencies[name])
            print(f"  {label:<24} p50 {stats[name][0]:6.3f} ms   p99 {stats[name][1]:6.3f} ms"
                  f"   (p90 {p90:6.3f} ms, max {worst:6.2f} ms)")  # fmt: skip
        gap = stats["sandboxed"][1] - stats["plain"][1]
        print(f"  ratio sandboxed/unsandboxed: p50 {stats['sandboxed'][0] / stats['plain'][0]:.2f}×,"
              f" p99 {stats['sandboxed'][1] / stats['plain'][1]:.2f}× (p99 {gap:+.3f} ms);"
              f" target p99 within {ECHO_TARGET_MS} ms: {verdict(gap <= ECHO_TARGET_MS)}", flush=True)  # fmt: skip
        p99 = lambda values: self.term.pct(values, 99)  # noqa: E731
        low, high = bootstrap(latencies["sandboxed"], latencies["plain"], p99)
        low50, high50 = bootstrap(latencies["sandboxed"], latencies["plain"], statistics.median)
        print(f"  noise: 95% bootstrap interval of the gap, p99 [{low:+.3f}, {high:+.3f}] ms,"
              f" p50 [{low50:+.3f}, {high50:+.3f}] ms", flush=True)  # fmt: skip
        own_gap = stats["own"][1] - stats["plain"][1]
        own_low, own_high = bootstrap(latencies["own"], latencies["plain"], p99)
        print(f"  diagnosis: own-parent sandboxed p99 − unsandboxed {own_gap:+.3f} ms"
              f" (95% [{own_low:+.3f}, {own_high:+.3f}])", flush=True)  # fmt: skip
        self.results["echo"] = {**stats, "p99_interval": (low, high), "own_gap": own_gap}

    # --- 3. throughput ----------------------------------------------------------------------------

    def make_tarball(self, path: Path) -> int:
        """This interpreter's standard library (no tests, site-packages, build files or caches), tarred once."""
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        skipped_top = {"site-packages", "test", "lib-dynload", "ensurepip", "__pycache__", "idlelib", "tkinter"}
        count = 0
        with tarfile.open(path, "w") as tar:
            for folder, dirs, names in os.walk(stdlib):
                relative = Path(folder).relative_to(stdlib)
                if relative == Path("."):
                    dirs[:] = [] if self.args.quick else [
                        d for d in dirs if d not in skipped_top and not d.startswith("config-")
                    ]  # fmt: skip
                else:
                    dirs[:] = [d for d in dirs if d not in ("__pycache__", "tests", "test", "idle_test")]
                for name in sorted(names):
                    if name.endswith(".py"):
                        tar.add(Path(folder) / name, arcname=str(relative / name))
                        count += 1
        return count

    def prepare_work(self, attempt_id: int, *, tarball: bool) -> Path:
        user = self.shell_users[attempt_id]
        self.local.prepare_workspace(attempt_id, user)
        work = self.layout.workspace(attempt_id) / ".rbbench"
        work.mkdir(exist_ok=True)
        (work / "work.py").write_text(WORK)
        if tarball:
            files = self.make_tarball(work / "lib.tar")
            size = (work / "lib.tar").stat().st_size
            print(f"  file loop: {files} .py files of {sysconfig.get_paths()['stdlib']}"
                  f" ({size / 1e6:.1f} MB tar), untarred into the workspace and compiled", flush=True)  # fmt: skip
        for path in [work, *work.iterdir()]:
            os.chown(path, user.uid, user.gid)
        return work

    def inside(self, policy: Any, name: str, argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
        command = [policy.python, f"{self.sandbox.HOME}/.rbbench/work.py", *argv]
        self.launched.append(policy)
        instance = self.sandbox.launch(policy, name, command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = instance.process.communicate(timeout=900)
        finally:
            instance.close()
        return self._parse(out, err, "inside")

    def outside(self, policy: Any, argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
        workspace = policy.workspace
        command = [policy.python, f"{workspace}/.rbbench/work.py", *argv]
        binds = self.python_binds()
        environment = {
            "HOME": workspace,
            "USER": self.shell_users[policy.attempt_id].name,
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TMPDIR": "/tmp",  # noqa: S108 - as inside (a tmpfs there); the loops never use it
            "PYTHONPATH": ":".join(outside for outside, _inside in binds),
            "PYTHONNOUSERSITE": "1",
            **(env or {}),
        }

        def drop() -> None:
            os.setsid()
            os.setgroups([policy.gid])
            os.setgid(policy.gid)
            os.setuid(policy.uid)

        result = subprocess.run(
            command, env=environment, cwd=workspace, preexec_fn=drop, capture_output=True, timeout=900, check=False
        )
        return self._parse(result.stdout, result.stderr, "outside")

    @staticmethod
    def _parse(out: bytes, err: bytes, where: str) -> dict[str, Any]:
        try:
            return json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RuntimeError(f"the workload failed {where}: {err.decode(errors='replace')[-1500:]}") from None

    def interleaved(
        self,
        sides: list[tuple[str, Any]],
        label: str,
        inside_argv: list[str],
        outside_argv: list[str],
        rounds: int,
        **outside_env: str,
    ) -> dict[str, list[dict[str, Any]]]:
        """Each side once a round, the order rotated every round (ABAB… for two sides).

        `sides`: (name, policy) pairs; a name starting "inside" runs in a sandbox instance of its
        policy (the policy's environment alone), "outside" a plain process of the policy's user.
        Round 0 warms caches on every side and is not counted.
        """
        results: dict[str, list[dict[str, Any]]] = {name: [] for name, _policy in sides}
        for index in range(rounds + 1):
            shift = index % len(sides)
            for name, policy in sides[shift:] + sides[:shift]:
                if name.startswith("inside"):
                    result = self.inside(policy, f"bench-{label}-{index}", inside_argv)
                else:
                    result = self.outside(policy, outside_argv, outside_env or None)
                if index:
                    results[name].append(result)
        return results

    async def throughput(self) -> None:
        rounds = self.args.rounds
        quick = self.args.quick
        attempt_id = self.echo_id  # its sandbox runs (the attempt's cgroup, made by its keeper)
        request = self.SandboxRequest(attempt_id=attempt_id)
        policy = self.local_policy(request)
        print(f"\n3. throughput, inside a sandbox instance of the attempt's policy vs a plain setuid process"
              f" (same user, {policy.python}), {2 * rounds} interleaved rounds (the file loop {rounds})"
              " + 1 warm-up")  # fmt: skip
        print(f"  the attempt's caps: cores {policy.cpus} (host {len(os.sched_getaffinity(0))}),"
              f" CPU quota {policy.cpu_quota:g} cores, memory {policy.memory_bytes / 2**30:.1f} GiB,"
              f" pids {policy.pids_max}; the CPU and memory loops are single-threaded, so a cpuset"
              " narrower than the host would not bias them")  # fmt: skip
        print(f"  diagnosis column: the same instance under a cgroup parent of its own ({self.own_parent})"
              f" instead of the site's ({policy.cgroup_parent}), which every attempt's sandbox on this host"
              " shares")  # fmt: skip
        own = dataclasses.replace(policy, cgroup_parent=self.own_parent)
        await asyncio.to_thread(self.prepare_work, attempt_id, tarball=True)
        home = self.sandbox.HOME
        workspace = policy.workspace
        cpu_count = "1500000" if quick else "6000000"
        mem = ["256", "8" if quick else "30"]
        loops = [
            ("cpu", "CPU loop, 1 thread", "M ops/s", 1e-6, ["cpu", cpu_count], ["cpu", cpu_count], False),
            ("memory", "numpy copy of 256 MB", "GB/s", 1.0, ["memory", *mem], ["memory", *mem], False),
            (
                "files",
                "untar + compileall",
                "s",
                1.0,
                ["files", f"{home}/.rbbench/lib.tar", home],
                ["files", f"{workspace}/.rbbench/lib.tar", workspace],
                True,
            ),
        ]
        stats = {}
        for key, label, unit, scale, inside_argv, outside_argv, seconds in loops:
            sides = [("inside", policy), ("inside, own parent", own), ("outside", policy)]
            count = rounds if seconds else 2 * rounds  # the short loops get twice the rounds
            runs = await asyncio.to_thread(self.interleaved, sides, key, inside_argv, outside_argv, count)
            ins, mine, outs = runs["inside"], runs["inside, own parent"], runs["outside"]
            for result in ins + mine + outs:
                if result.get("rc"):
                    raise RuntimeError(f"compileall failed: {result}")
            inside_value = statistics.median(r["value"] for r in ins)
            outside_value = statistics.median(r["value"] for r in outs)
            inside_cpu = statistics.median(r["cpu"] for r in ins)
            outside_cpu = statistics.median(r["cpu"] for r in outs)
            # As a speed: inside's throughput over outside's (for seconds, outside's time over inside's).
            ratio = outside_value / inside_value if seconds else inside_value / outside_value
            cpu_ratio = outside_cpu / inside_cpu if seconds else inside_cpu / outside_cpu
            # Each round's inside run against the outside run next to it: drift between rounds cancels.
            rounds_ = zip(ins, outs, strict=True)
            pairs = [(o["value"] / i["value"] if seconds else i["value"] / o["value"]) for i, o in rounds_]
            pair_ratio = statistics.median(pairs)
            own_value = statistics.median(r["value"] for r in mine)
            own_ratio = outside_value / own_value if seconds else own_value / outside_value
            speeds_in = [1 / r["value"] if seconds else r["value"] for r in ins]
            speeds_out = [1 / r["value"] if seconds else r["value"] for r in outs]
            low, high = bootstrap(speeds_in, speeds_out, statistics.median, ratio=True)
            stats[key] = (inside_value, outside_value, ratio, cpu_ratio, pair_ratio, own_ratio, low, high)
            extra = f", {ins[0]['compiled']} .pyc each" if key == "files" else ""
            print(f"  {label:<22} inside {inside_value * scale:8.2f} {unit:<7} outside {outside_value * scale:8.2f}"
                  f" {unit:<7} speed inside/outside {ratio:.3f}×{extra}; target ≥ {SPEED_TARGET}: "
                  f"{verdict(ratio >= SPEED_TARGET)}", flush=True)  # fmt: skip
            spread_in = ", ".join(f"{r['value'] * scale:.2f}" for r in ins)
            spread_out = ", ".join(f"{r['value'] * scale:.2f}" for r in outs)
            print(f"  {'':<22} runs inside {spread_in}; outside {spread_out}", flush=True)
            print(f"  {'':<22} noise: 95% bootstrap interval of the speed ratio [{low:.3f}, {high:.3f}]", flush=True)
            print(f"  {'':<22} cross-checks: median of the rounds' own inside/outside ratios {pair_ratio:.3f}×"
                  f" (drift cancels); per CPU-second instead of wall-second {cpu_ratio:.3f}×"
                  " (waiting for a core left out)", flush=True)  # fmt: skip
            print(f"  {'':<22} diagnosis: under a parent of its own, inside {own_value * scale:.2f} {unit},"
                  f" speed inside/outside {own_ratio:.3f}×", flush=True)  # fmt: skip
        self.results["throughput"] = stats

    # --- 4. GPU ------------------------------------------------------------------------------------

    async def gpu(self) -> None:
        print("\n4. GPU")
        smi = shutil.which("nvidia-smi")
        reason = ""
        listed: list[str] = []
        if smi is None:
            reason = "nvidia-smi is not on PATH (no NVIDIA driver on this machine)"
        else:
            try:
                found = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=60, check=False)
            except (OSError, subprocess.SubprocessError) as exc:
                reason = f"nvidia-smi could not run: {exc}"
            else:
                listed = [line for line in found.stdout.splitlines() if line.startswith("GPU ")]
                if found.returncode != 0:
                    reason = f"nvidia-smi failed: {(found.stderr or found.stdout).strip()[:200]}"
                elif not listed:
                    reason = "nvidia-smi lists no GPU"
        if reason:
            print(f"  skipped: {reason}")
            self.results["gpu"] = reason
            return
        attempt_id = self.gpu_id
        request = self.SandboxRequest(attempt_id=attempt_id, gpus=(0,), host_gpu_count=len(listed))
        policy = self.local_policy(request)
        await asyncio.to_thread(self.prepare_work, attempt_id, tarball=False)
        size, repeats = ("4096", "20") if self.args.quick else ("8192", "50")
        print(f"  {len(listed)} GPU(s) on the host; the sandbox gets GPU 0 (cores {policy.cpus});"
              f" bf16 matmul {size}×{size}, {repeats} per run")  # fmt: skip
        runs = await asyncio.to_thread(
            self.interleaved,
            [("inside", policy), ("outside", policy)],
            "gpu",
            ["gpu", size, repeats],
            ["gpu", size, repeats],
            max(2, self.args.rounds),
            # Outside: the same one GPU, by the same numbering the policy gives the sandbox.
            CUDA_VISIBLE_DEVICES="0",
            CUDA_DEVICE_ORDER="PCI_BUS_ID",
        )
        ins, outs = runs["inside"], runs["outside"]
        errors = [r["error"] for r in ins + outs if r.get("error")]
        counts = sorted({r["count"] for r in ins})
        if all(r.get("error") for r in outs):
            reason = f"torch can't use the GPU even outside the sandbox ({outs[0]['error']}: a CPU build?)"
            print(f"  skipped: {reason}")
            self.results["gpu"] = reason
            return
        if errors:
            print(f"  inside sees {counts} GPU(s); matmul failed: {errors[0]}")
            self.results["gpu"] = {"count": counts, "ratio": 0.0}
            return
        inside_value = statistics.median(r["value"] for r in ins)
        outside_value = statistics.median(r["value"] for r in outs)
        ratio = inside_value / outside_value
        print(f"  matmul inside {inside_value:7.1f} TFLOP/s, outside {outside_value:7.1f} TFLOP/s"
              f" ({ins[0].get('name', '?')}); speed inside/outside {ratio:.3f}×; target ≥ {SPEED_TARGET}:"
              f" {verdict(ratio >= SPEED_TARGET)}")  # fmt: skip
        print(f"  the sandbox sees torch.cuda.device_count() = {counts}: {verdict(counts == [1])}")
        self.results["gpu"] = {"count": counts, "ratio": ratio}

    # --- the run ------------------------------------------------------------------------------------

    def setup(self) -> None:
        problems = self.sandbox.problems()
        if problems:
            raise SystemExit("this machine can't run sandboxes: " + "; ".join(problems))
        self.layout.install_tools()  # once per deployment on a site, not per terminal
        for attempt_id in self.all_ids:
            self.shell_users[attempt_id] = self.users.attempt_user(attempt_id)
        # One-time costs of a server process (bwrap --help probe), not of opening a terminal.
        self.local_policy(self.SandboxRequest(attempt_id=self.echo_id))

    async def run(self) -> None:
        await asyncio.to_thread(self.setup)
        try:
            await self.shell_start()
            await self.echo()
            await self.breakdown()
            await self.throughput()
            await self.gpu()
        finally:
            for client in list(self.clients):
                with contextlib.suppress(Exception):
                    await self.close(client)

    def cleanup(self) -> None:
        from tests.unix_users_support import delete_users_with_prefix

        for client in self.clients:
            if client.fd >= 0:  # a PTY of ours (a HolderShell's connection closes with the event loop)
                with contextlib.suppress(OSError):
                    os.close(client.fd)
        for attempt_id in self.all_ids:
            with contextlib.suppress(Exception):
                self.end_attempt(attempt_id)
        for policy in {p.name: p for p in self.launched}.values():  # an attempt that launch() ran in without a keeper
            with contextlib.suppress(Exception):
                hierarchy = self.sandbox.hierarchy_for(policy)
                if hierarchy is not None:
                    hierarchy.remove(policy.cgroup())
        with contextlib.suppress(Exception):
            hierarchy = self.sandbox.cgroups.detect()
            if hierarchy is not None:
                hierarchy.remove(self.own_parent)
        delete_users_with_prefix(f"{self.prefix}-")

    def summary(self) -> None:
        r = self.results
        print(f"\nsummary (load average {load()})")
        if "start" in r:
            warm, cold = r["start"]["sandboxed warm"], r["start"]["sandboxed cold"]
            plain = r["start"]["plain warm"]
            low, high = r["start"]["warm_interval"]
            print(f"  shell start, sandboxed warm: median {warm[0]:.1f} ms (95% {low:.0f}–{high:.0f}),"
                  f" p90 {warm[1]:.1f} ms ({warm[0] / plain[0]:.2f}× unsandboxed {plain[0]:.1f} ms);"
                  f" cold {cold[0]:.1f} ms"
                  f" → target < {WARM_TARGET_MS:.0f} ms: {verdict(warm[0] < WARM_TARGET_MS)}")  # fmt: skip
        if "echo" in r:
            sandboxed, plain = r["echo"]["sandboxed"], r["echo"]["plain"]
            gap = sandboxed[1] - plain[1]
            low, high = r["echo"]["p99_interval"]
            print(f"  echo p99: sandboxed {sandboxed[1]:.3f} ms, unsandboxed {plain[1]:.3f} ms ({gap:+.3f} ms,"
                  f" 95% [{low:+.2f}, {high:+.2f}]; own parent {r['echo']['own_gap']:+.3f} ms)"
                  f" → target within {ECHO_TARGET_MS} ms: {verdict(gap <= ECHO_TARGET_MS)}")  # fmt: skip
        for key, label in (("cpu", "CPU loop"), ("memory", "memory copy"), ("files", "untar + compileall")):
            if key in r.get("throughput", {}):
                ratio = r["throughput"][key][2]
                cpu_ratio, pair_ratio, own_ratio, low, high = r["throughput"][key][3:8]
                print(f"  {label:<19} speed inside/outside {ratio:.3f}× (95% {low:.2f}–{high:.2f}; per round"
                      f" {pair_ratio:.3f}×, per CPU-second {cpu_ratio:.3f}×; own parent {own_ratio:.3f}×)"
                      f" → target ≥ {SPEED_TARGET}: {verdict(ratio >= SPEED_TARGET)}")  # fmt: skip
        gpu = r.get("gpu")
        if isinstance(gpu, str):
            print(f"  GPU: skipped ({gpu})")
        elif isinstance(gpu, dict):
            print(f"  GPU matmul speed inside/outside {gpu['ratio']:.3f}× → {verdict(gpu['ratio'] >= SPEED_TARGET)};"
                  f" GPUs seen inside {gpu['count']} → {verdict(gpu['count'] == [1])}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts: 3 repeats, 100 keys, 2 rounds, small loops")
    parser.add_argument("--repeats", type=int, default=None, help="terminal opens per kind (default 20)")
    parser.add_argument("--keys", type=int, default=None, help="keystrokes per terminal for the echo (default 500)")
    parser.add_argument("--rounds", type=int, default=None, help="inside/outside pairs per loop (default 6)")
    args = parser.parse_args()
    args.repeats = args.repeats or (3 if args.quick else 20)
    args.keys = args.keys or (100 if args.quick else 500)
    args.rounds = args.rounds or (2 if args.quick else 6)
    if os.geteuid() != 0:
        print("benchmarks/sandbox.py must run as root: it makes attempt users, cgroups, sandboxes.", file=sys.stderr)
        return 2

    def terminated(*_: object) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, terminated)
    prefix = f"rbbench{os.getpid()}"
    scratch = Path(tempfile.mkdtemp(prefix="rbbench-", dir="/tmp"))
    scratch.chmod(0o755)  # the terminal user and the attempts' users reach their folders below it
    python3 = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "/usr/bin/python3"
    found = subprocess.run([python3, "--version"], capture_output=True, text=True, check=False)
    versions = f"holders on {python3} ({found.stdout.strip()})"
    bwrap = subprocess.run(["bwrap", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    quick = " (quick)" if args.quick else ""
    print(f"sandbox benchmark on {os.cpu_count()} CPU(s), load average {load()}; {versions}, {bwrap};"
          f" {args.repeats} repeats, {args.keys} keys, {args.rounds} rounds{quick}")  # fmt: skip
    bench = None
    try:
        configure_django(scratch, prefix)
        from workstation.sandbox import cgroups

        hierarchy = cgroups.detect()
        print(f"scratch {scratch}; users {prefix}-{BASE_ATTEMPT}…; cgroup v{hierarchy.version if hierarchy else '?'}")
        bench = Bench(args, scratch, prefix)
        try:
            asyncio.run(bench.run())
        finally:
            bench.cleanup()
        bench.summary()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
