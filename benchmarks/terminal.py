"""Terminal benchmark: our server vs terminado vs tmux vs a raw PTY loop — throughput, echo, Ctrl-C, CPU, 100 terminals.

Our server's path is browser → WebSocket → server → the terminal's holder socket → PTY
(workstation/tools/term_holder.py: one holder process per terminal, no tmux, no terminal emulator
but the browser's). It is compared with three peers: "raw PTY", bash on a PTY read by a plain loop
in this process (the limit); terminado (a peer server: WebSocket → server → PTY); and tmux, the old
design (shells in tmux, as the site ran them before the holders): "tmux PTY" reads a tmux client
with the same raw loop, flat out, and "tmux alone" times the flood in a tmux session nobody
attaches to, the throughput ceiling of any server that keeps its shells in tmux.

CPU per 100 MB of output: our uvicorn process plus this run's holder processes (`pgrep -f
rebench-termhold`, those with this run's data folder in their command line), terminado's process,
and the tmux server with its pane recorder (and, for "tmux PTY", its client), each read from
/proc/<pid>/stat (utime + stime) before and after the flood. The shell and `yes` are not counted
on any side.

Run: .venv/bin/python benchmarks/terminal.py [--mb 100] [--keys 500] [--terminals 100]
Installs terminado into its own virtualenv (data/venv-terminado) on first run; starts our
ASGI server (uvicorn) on a throwaway SQLite database; prints figures and ratios. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pty
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parent.parent
TERMINADO_VENV = ROOT / "data" / "venv-terminado"  # data/ is git-ignored
TERMINADO_VERSION = "0.18.1"
PROMPT = "BENCH$ "
SET_PROMPT = "PS1='BENCH''$ '; stty -echoctl\r"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (/proc/<pid>/stat); a gone one counts 0."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state is field 0
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def pgrep(pattern: str, within: str = "") -> list[int]:
    """Processes whose command line has `pattern` (and `within`, when given: this run's own, not a test's)."""
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False).stdout.split()
    pids = []
    for pid in map(int, found):
        if pid == os.getpid():
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if pattern in command and within in command:
            pids.append(pid)
    return pids


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def flood_command(mb: int, then: str = "echo DONE$((40+2))") -> str:
    # 100-byte lines; the marker is computed so the echoed command line never matches it.
    return f"yes {'x' * 99} | head -c {mb * 1_000_000}; {then}\r"


# --- clients ---------------------------------------------------------------------------------


class Client:
    """One terminal, as the browser sees it: write keystrokes, read output."""

    async def send(self, text: str) -> None: ...

    async def recv(self) -> bytes:
        raise NotImplementedError

    async def close(self) -> None: ...

    pending = b""

    async def until(self, needle: str, timeout: float = 120) -> tuple[float, int]:
        """Seconds until `needle` shows in the output, and how many bytes arrived meanwhile.

        What follows the needle in the same chunk is kept for the next call.
        """
        want = needle.encode()
        total = 0
        began = time.perf_counter()
        while want not in self.pending:
            chunk = await asyncio.wait_for(self.recv(), timeout)
            total += len(chunk)
            self.pending = (self.pending + chunk)[-8192:]
        self.pending = self.pending[self.pending.index(want) + len(want) :]
        return time.perf_counter() - began, total


class OurClient(Client):
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, cookie: str, origin: str) -> OurClient:
        ws = await websockets.connect(
            url, additional_headers={"Cookie": cookie, "Origin": origin}, max_size=None, compression=None
        )
        return cls(ws)

    async def send(self, text: str) -> None:
        await self.ws.send(b"\x00" + text.encode())

    unacked = 0

    async def recv(self) -> bytes:
        # The page acks a frame once xterm.js has drawn it, after the person has it on screen
        # (static/js/terminal.js); so here a frame is acked once the caller has it: when it asks
        # for the next one. Acking before handing it over would put the ack's send on every echo's
        # timed path, which no browser does.
        if self.unacked:
            count, self.unacked = self.unacked, 0
            await self.ws.send(b"\x03" + count.to_bytes(4, "big"))
        while True:
            message = await self.ws.recv()
            if isinstance(message, bytes):
                self.unacked += len(message) - 1
                return message[1:]

    async def close(self) -> None:
        await self.ws.close()


class TerminadoClient(Client):
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str) -> TerminadoClient:
        ws = await websockets.connect(url, max_size=None, compression=None)
        await ws.send(json.dumps(["set_size", 24, 80]))
        return cls(ws)

    async def send(self, text: str) -> None:
        await self.ws.send(json.dumps(["stdin", text]))

    async def recv(self) -> bytes:
        while True:
            kind, *rest = json.loads(await self.ws.recv())
            if kind == "stdout":
                return rest[0].encode()

    async def close(self) -> None:
        await self.ws.close()


class RawPtyClient(Client):
    """bash in a PTY read by a plain loop in this process: the physical limit."""

    @classmethod
    async def open(cls) -> RawPtyClient:
        return cls()

    def __init__(self) -> None:
        pid, fd = pty.fork()
        if pid == 0:
            os.execvpe("bash", ["bash", "--norc", "--noprofile"], {**os.environ, "TERM": "xterm-256color"})  # noqa: S606
        self.pid, self.fd = pid, fd
        os.set_blocking(fd, False)

    async def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    async def recv(self) -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            try:
                return os.read(self.fd, 256 * 1024)
            except BlockingIOError:
                future: asyncio.Future[None] = loop.create_future()

                def ready(future: asyncio.Future[None] = future) -> None:
                    if not future.done():
                        future.set_result(None)

                loop.add_reader(self.fd, ready)
                try:
                    await future
                finally:
                    loop.remove_reader(self.fd)

    async def close(self) -> None:
        os.close(self.fd)
        os.waitpid(self.pid, 0)


TMUX_ENV = {**os.environ, "TERM": "xterm-256color"}

# The site's former tmux options (workstation/tmux.py, before the holders replaced tmux): no status
# line, no mouse mode, a long history, the window follows the latest client, no wait after ESC.
TMUX_OPTIONS = [
    ("status", "off"),
    ("mouse", "off"),
    ("history-limit", "50000"),
    ("window-size", "latest"),
    ("escape-time", "0"),
    ("remain-on-exit", "off"),
    ("default-shell", "/bin/sh"),
]

# The site's former pane recorder (workstation/tools/cast_pipe.py, fed by tmux `pipe-pane`), cut to
# what it did per read: asciicast `o` lines, a 1 MB pipe, a 10 ms nap after a large read.
TMUX_RECORDER = textwrap.dedent(
    """
    import codecs, fcntl, json, os, sys, time
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    try:
        fcntl.fcntl(0, 1031, 1024 * 1024)  # F_SETPIPE_SZ
    except OSError:
        pass
    while True:
        data = os.read(0, 1024 * 1024)
        text = decoder.decode(data, final=not data)
        if text:
            os.write(fd, (json.dumps([round(time.time(), 6), "o", text]) + "\\n").encode())
        if not data:
            break
        if len(data) >= 4096:
            time.sleep(0.01)
    """
)
RECORDER_PATH = Path(tempfile.gettempdir()) / f"rebench-bench-recorder-{os.getpid()}.py"


def start_bench_tmux(sock: str) -> None:
    """A tmux server with the site's former options and session "bench" (80×24, bash), its pane piped
    into the former recorder (to /dev/null)."""
    RECORDER_PATH.write_text(TMUX_RECORDER)
    argv = ["tmux", "-L", sock, "-f", "/dev/null", "start-server"]
    for name, value in [*TMUX_OPTIONS, ("default-command", "bash --norc --noprofile")]:
        argv += [";", "set-option", "-g", name, value]
    record = f"exec {sys.executable} {RECORDER_PATH} /dev/null"
    argv += [";", "new-session", "-d", "-s", "bench", "-x", "80", "-y", "24"]
    argv += [";", "pipe-pane", "-t", "=bench:", record]
    subprocess.run(argv, check=True, env=TMUX_ENV)


def tmux_pids(sock: str) -> list[int]:
    """The bench tmux server and its pane recorder."""
    shown = subprocess.run(
        ["tmux", "-L", sock, "display-message", "-p", "#{pid}"], capture_output=True, text=True, env=TMUX_ENV
    )
    server = [int(shown.stdout)] if shown.stdout.strip().isdigit() else []
    return server + pgrep(str(RECORDER_PATH))


class TmuxPtyClient(RawPtyClient):
    """bash in tmux (the former options and pane recorder), its client read by the raw loop: tmux's own bound."""

    socket = f"rebench-bench-tmux-{os.getpid()}"

    def __init__(self) -> None:
        start_bench_tmux(self.socket)
        pid, fd = pty.fork()
        if pid == 0:
            argv = ["tmux", "-L", self.socket, "attach-session", "-t", "=bench"]
            os.execvpe("tmux", argv, TMUX_ENV)  # noqa: S606
        self.pid, self.fd = pid, fd
        os.set_blocking(fd, False)

    @classmethod
    async def open(cls) -> TmuxPtyClient:
        return cls()

    async def close(self) -> None:
        await super().close()
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], check=False, capture_output=True)


def tmux_alone(mb: int) -> tuple[float, float]:
    """MB/s of the flood in a tmux session that no client reads (the former options and pane recorder),
    and the tmux server's and recorder's CPU seconds per 100 MB.

    tmux parses every byte a pane prints into its screen whatever its clients do, so this is the
    ceiling of any server that keeps its shells in tmux, client or no client.
    """
    sock = f"rebench-bench-alone-{os.getpid()}"
    tmux = ["tmux", "-L", sock]
    start_bench_tmux(sock)
    try:
        time.sleep(0.5)
        flood = flood_command(mb, then=f"tmux -L {sock} wait-for -S done").removesuffix("\r")
        pids = tmux_pids(sock)
        cpu_before = cpu_seconds(pids)
        began = time.perf_counter()
        subprocess.run([*tmux, "send-keys", "-t", "=bench:", flood, "Enter"], check=True, env=TMUX_ENV)
        subprocess.run([*tmux, "wait-for", "done"], check=True, env=TMUX_ENV, timeout=600)
        seconds = time.perf_counter() - began
        return mb / seconds, (cpu_seconds(pids) - cpu_before) * 100 / mb
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)


# --- measurements ----------------------------------------------------------------------------


async def prepare(client: Client) -> None:
    await asyncio.sleep(0.5)
    await client.send(SET_PROMPT)
    await client.until(PROMPT, timeout=30)


async def throughput(client: Client, mb: int) -> float:
    await client.send(flood_command(mb))
    seconds, _ = await client.until("DONE42")
    await client.until(PROMPT)
    return mb / seconds


async def echo_latency(client: Client, keys: int) -> list[float]:
    client.pending = b""
    times = []
    for i in range(keys):
        key = "abcdefghijklmnopqrstuvwxyz"[i % 26]
        began = time.perf_counter()
        await client.send(key)
        # The echo is the key itself; wait until it comes back.
        while True:
            chunk = await asyncio.wait_for(client.recv(), 10)
            if key.encode() in chunk:
                break
        times.append((time.perf_counter() - began) * 1000)
        if i % 50 == 49:
            await client.send("\x15")  # Ctrl-U: clear the line so it never wraps
            await asyncio.sleep(0.05)
            await drain(client, 0.05)
    await client.send("\x15")
    await drain(client, 0.1)
    return times


async def drain(client: Client, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while (left := end - time.perf_counter()) > 0:
        try:
            await asyncio.wait_for(client.recv(), left)
        except TimeoutError:
            return


async def ctrl_c(client: Client) -> float:
    await client.send("yes\r")
    await drain(client, 2.0)
    client.pending = b""
    began = time.perf_counter()
    await client.send("\x03")
    await client.until(PROMPT, timeout=60)
    return time.perf_counter() - began


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(name: str, open_client, mb: int, keys: int, processes) -> dict[str, float]:
    """`processes(client)`: {part: pids} whose CPU time the flood is charged with (the client's server side)."""
    client = await open_client()
    await prepare(client)
    parts = processes(client)
    before = {part: cpu_seconds(pids) for part, pids in parts.items()}
    result = {"throughput": await throughput(client, mb)}
    spent = {part: (cpu_seconds(pids) - before[part]) * 100 / mb for part, pids in parts.items()}
    result["cpu"] = sum(spent.values())
    result.update({f"cpu {part}": value for part, value in spent.items()})
    latencies = await echo_latency(client, keys)
    result["p50"] = statistics.median(latencies)
    result["p99"] = pct(latencies, 99)
    result["ctrl_c"] = await ctrl_c(client)
    await client.close()
    print(
        f"  {name:<10} {result['throughput']:8.1f} MB/s   echo p50 {result['p50']:6.2f} ms  p99 {result['p99']:6.2f} ms"
        f"   Ctrl-C → prompt {result['ctrl_c'] * 1000:7.1f} ms   CPU {result['cpu']:6.2f} s/100 MB"
        f" ({' + '.join(f'{part} {value:.2f}' for part, value in spent.items())})",
        flush=True,
    )
    return result


async def concurrent(open_client, count: int, rounds: int) -> list[float]:
    clients = [await open_client(n) for n in range(1, count + 1)]
    await asyncio.gather(*(prepare(c) for c in clients))
    latencies: list[float] = []
    warmup: list[float] = []

    async def one(client: Client) -> None:
        await asyncio.sleep(random.uniform(0, 0.2))  # people don't type in lockstep
        for i in range(rounds):
            key = "abcdefghij"[i % 10]
            began = time.perf_counter()
            await client.send(key)
            while key.encode() not in await asyncio.wait_for(client.recv(), 30):
                pass
            # The first key of each terminal measures the start-up of 100 shells, not typing.
            (latencies if i else warmup).append((time.perf_counter() - began) * 1000)
            await asyncio.sleep(random.uniform(0.1, 0.3))  # a fast typist: about 5 keys a second

    await asyncio.sleep(2)  # let 100 fresh shells settle
    await asyncio.gather(*(one(c) for c in clients))
    await asyncio.gather(*(c.close() for c in clients))
    print(f"  {count} terminals: first key after they all opened: p50 {statistics.median(warmup):.1f} ms,"
          f" max {max(warmup):.1f} ms (start-up, not counted below)", flush=True)  # fmt: skip
    return latencies


# --- servers ---------------------------------------------------------------------------------


TERMINADO_APP = textwrap.dedent(
    """
    import sys, tornado.ioloop, tornado.web
    from terminado import TermSocket, UniqueTermManager
    manager = UniqueTermManager(shell_command=["bash", "--norc", "--noprofile"])
    app = tornado.web.Application([(r"/websocket", TermSocket, {"term_manager": manager})])
    app.listen(int(sys.argv[1]), "127.0.0.1")
    tornado.ioloop.IOLoop.current().start()
    """
)


def terminado_python() -> Path:
    python = TERMINADO_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing terminado {TERMINADO_VERSION} into {TERMINADO_VENV} …", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(TERMINADO_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"terminado=={TERMINADO_VERSION}"], check=True)
    return python


SEED = textwrap.dedent(
    """
    from django.test import Client
    from tests import factories
    from trials.models import Workstation
    attempt = factories.AttemptFactory.create(reservation__workstation__backend=Workstation.Backend.LOCAL)
    client = Client()
    client.force_login(attempt.user)
    print(attempt.pk, client.cookies["sessionid"].value)
    """
)


def ours_env(data_dir: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATA_DIR": data_dir,
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "TERMINAL_TMUX_SOCKET_PREFIX": f"rebench-bench-{os.getpid()}",
        "TERMINAL_MAX_TABS": "200",
        # No classifier warm-up in the server (torch and the encoder, seconds of CPU as it starts): it
        # would compete with the first columns and could be charged to our server's CPU figure.
        "CLASSIFIER_PRELOAD": "0",
        "LOG_LEVEL": "WARNING",
    }


def start_ours(data_dir: str, port: int, ws: str = "auto") -> tuple[subprocess.Popen[bytes], int, str]:
    env = ours_env(data_dir)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    seeded = subprocess.run(
        [*manage, "shell", "-c", SEED], env=env, check=True, cwd=ROOT, capture_output=True, text=True
    )
    attempt_id, session = seeded.stdout.split()[-2:]
    argv = [sys.executable, "-m", "uvicorn", "rebench_site.asgi:application", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--log-level", "warning", "--ws", ws]
    server = subprocess.Popen(argv, env=env, cwd=ROOT)
    wait_port(port)
    return server, int(attempt_id), session


def end_ours(data_dir: str, attempt_id: int) -> None:
    """End the attempt's terminal holders and sandbox as the server would (whichever Unix user they ran as)."""
    code = f"from workstation.backends.local import end_attempt_sync; end_attempt_sync({attempt_id})"
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
        env=ours_env(data_dir),
        cwd=ROOT,
        check=False,
        capture_output=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


COLUMNS = ("raw PTY", "tmux alone", "tmux PTY", "terminado", "ours")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100, help="output for the throughput run (MB)")
    parser.add_argument("--keys", type=int, default=500, help="keystrokes for the echo latency run")
    parser.add_argument("--terminals", type=int, default=100, help="concurrent terminals on our server (0: none)")
    parser.add_argument("--only-concurrent", action="store_true", help="skip the one-terminal comparisons")
    parser.add_argument("--columns", default=",".join(COLUMNS), help=f"which of {', '.join(COLUMNS)} to measure")
    parser.add_argument("--ws", default="auto", help="uvicorn's --ws implementation for our server")
    args = parser.parse_args()
    columns = [] if args.only_concurrent else [c.strip() for c in args.columns.split(",") if c.strip()]
    if unknown := set(columns) - set(COLUMNS):
        parser.error(f"unknown columns: {', '.join(sorted(unknown))}")
    print(f"terminal benchmark on {os.cpu_count()} CPU(s): {args.mb} MB, {args.keys} keys, {args.terminals} terminals"
          f"; uvicorn --ws {args.ws}; load average {load()}")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="rebench-bench-") as data_dir:
        os.chmod(data_dir, 0o755)  # noqa: S103 - the shells run as another user and must reach their workspace
        ours_port, terminado_port = free_port(), free_port()
        ours, attempt_id, session = start_ours(data_dir, ours_port, args.ws)
        terminado = None
        if "terminado" in columns:
            terminado = subprocess.Popen([str(terminado_python()), "-c", TERMINADO_APP, str(terminado_port)])
            wait_port(terminado_port)
        cookie, origin = f"sessionid={session}", f"http://127.0.0.1:{ours_port}"

        def our_url(n: int) -> str:
            return f"ws://127.0.0.1:{ours_port}/ws/attempts/{attempt_id}/terminal/{n}/?cols=80&rows=24"

        processes = {
            "raw PTY": lambda client: {"reader": [os.getpid()]},  # the reading loop is this process
            "tmux PTY": lambda client: {"tmux + recorder": tmux_pids(client.socket), "client": [client.pid]},
            "terminado": lambda client: {"server": [terminado.pid] if terminado is not None else []},
            # Our server and this run's holders (their sockets are in its data folder): the attempt's
            # sandbox (keeper, spawner, the attach client) only hands the PTY over and is idle meanwhile.
            "ours": lambda client: {"server": [ours.pid], "holder": pgrep("rebench-termhold", within=data_dir)},
        }
        openers = {
            "raw PTY": RawPtyClient.open,
            "tmux PTY": TmuxPtyClient.open,
            "terminado": lambda: TerminadoClient.open(f"ws://127.0.0.1:{terminado_port}/websocket"),
            "ours": lambda: OurClient.open(our_url(1), cookie, origin),
        }
        results: dict[str, dict[str, float]] = {}
        many: list[float] = []
        try:
            for name in COLUMNS:
                if name not in columns:
                    continue
                if name == "tmux alone":
                    speed, cpu = tmux_alone(args.mb)
                    results[name] = {"throughput": speed, "cpu": cpu}
                    print(f"  {name:<10} {speed:8.1f} MB/s   (no client: no echo to time)"
                          f"   CPU {cpu:6.2f} s/100 MB (tmux server + recorder)", flush=True)  # fmt: skip
                else:
                    results[name] = await measure(name, openers[name], args.mb, args.keys, processes[name])
            if args.terminals:
                many = await concurrent(
                    lambda n: OurClient.open(our_url(n + 1), cookie, origin), args.terminals, rounds=20
                )
        finally:
            stop(ours)
            if terminado is not None:
                stop(terminado)
            end_ours(data_dir, attempt_id)
            RECORDER_PATH.unlink(missing_ok=True)

    report(results, many, args.terminals)
    print(f"load average at the end {load()}")


def report(results: dict[str, dict[str, float]], many: list[float], terminals: int) -> None:
    def ratio(metric: str, a: str, b: str) -> str:
        if a in results and b in results:
            return f"{results[a][metric] / results[b][metric]:6.2f}×"
        return "   n/a"

    if "ours" in results:
        ours_r = results["ours"]
        print("\nratios (ours / peer)")
        print(f"  throughput   vs terminado {ratio('throughput', 'ours', 'terminado')}"
              f"   vs raw PTY {ratio('throughput', 'ours', 'raw PTY')}   (targets ≥ 1.0 and ≥ 0.75)")  # fmt: skip
        print(f"  echo p99     vs terminado {ratio('p99', 'ours', 'terminado')}"
              f"   (target ≤ 1.0; absolute target < 10 ms: {ours_r['p99']:.2f} ms)")  # fmt: skip
        print(f"  Ctrl-C       vs terminado {ratio('ctrl_c', 'ours', 'terminado')}   (absolute target < 0.5 s:"
              f" {ours_r['ctrl_c']:.3f} s)")  # fmt: skip
        print(f"  CPU per 100 MB vs terminado {ratio('cpu', 'ours', 'terminado')}"
              f"   vs tmux PTY {ratio('cpu', 'ours', 'tmux PTY')}   vs tmux alone {ratio('cpu', 'ours', 'tmux alone')}"
              f"   (ours: server {ours_r['cpu server']:.2f} s + holder {ours_r['cpu holder']:.2f} s)")  # fmt: skip
        print(f"  throughput vs the old path: ours / tmux PTY {ratio('throughput', 'ours', 'tmux PTY')},"
              f" ours / tmux alone {ratio('throughput', 'ours', 'tmux alone')}")  # fmt: skip
        print(f"  tmux's bound: tmux alone / raw PTY {ratio('throughput', 'tmux alone', 'raw PTY')},"
              f" / terminado {ratio('throughput', 'tmux alone', 'terminado')}")  # fmt: skip
        print(f"  a tmux client read flat out: tmux PTY / tmux alone {ratio('throughput', 'tmux PTY', 'tmux alone')}")
        # A raw loop on a tmux client has no WebSocket, no server and no browser side: its echo is the
        # floor of any server that keeps its shells in tmux.
        print(f"  echo floor under tmux: p99 tmux PTY / terminado {ratio('p99', 'tmux PTY', 'terminado')};"
              f" ours / tmux PTY {ratio('p99', 'ours', 'tmux PTY')}")  # fmt: skip
    if many:
        print(f"  {terminals} terminals on one server process: echo p50 {statistics.median(many):.2f} ms,"
              f" p99 {pct(many, 99):.2f} ms over {len(many)} keys (target p99 < 50 ms)")  # fmt: skip
    print("\nThroughput is the time until the shell has finished printing and the client sees its last line,"
          " the same end point for every column; tmux (tmux PTY) redraws the screen rather than forwarding"
          " every byte once its client falls behind, ours (through the holder) and terminado forward every byte."
          " CPU per 100 MB is the server side's: ours = uvicorn + the terminal's holder, terminado = its"
          " process, tmux = server + client (tmux PTY) + the pane recorder, raw PTY = this benchmark's reading"
          " loop.")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
