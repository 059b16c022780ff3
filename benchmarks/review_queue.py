"""Review queue under load: next + label by concurrent reviewers, our server against a peer, in one run.

    .venv/bin/python benchmarks/review_queue.py [--items 100000] [--reviewers 10] [--seconds 60]
        [--peer before|label-studio] [--peer-commit 2dede00] [--no-peer] [--sqlite] [--quiet-load 1.5]

Both sides get the same work on the same machine and the same PostgreSQL (each its own database):
N completions in a queue with overlap 1, R reviewers each looping "next item" then "label it" for S
seconds over the REST API with token auth, through a production server with two worker processes.
Printed: p50/p99 latency of next and of label, labels per second, double assignments (one item
handed to two reviewers), the server's CPU seconds per label (all its processes, user + system;
PostgreSQL's own not counted), and the ratios ours / peer. With --sqlite both sites run on the
embedded default instead (a SQLite file each, no Redis), and the peer is `before` only.

The peers:

- `before` (the default): this site as it was before `next` and `label` became one statement each
  on PostgreSQL (commit `--peer-commit`), checked out by this script as a git worktree beside the
  checkout (`../review-peer`) and served exactly as ours is (uvicorn, two workers, this .venv, the
  same environment).
- `label-studio`: Label Studio, installed by this script into its own virtualenv under
  data/benchmarks/ (gitignored) from PyPI at the version pinned below, on gunicorn (two workers ×
  four threads).

If the peer can't be set up, its numbers are reported as missing, never made up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "data" / "benchmarks"
LS_VERSION = "1.23.2"
LS_VENV = WORK / "label-studio-venv"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
OUR_DB = "rebench_bench_review"
LS_DB = "rebench_bench_labelstudio"
PEER_DB = "rebench_bench_review_before"
# The last commit before `next` and `label` became one statement each on PostgreSQL (with the
# connection pool and the token cache): the code the `before` peer serves.
PEER_COMMIT = "2dede00"
PEER_TREE = ROOT.parent / "review-peer"


def _one(cursor: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    """The one row of a count query."""
    row = cursor.fetchone()
    assert row is not None
    return row


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_database(name: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2, allow_redirects=False)
            return
        except requests.RequestException:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """User + system CPU seconds so far of a server and its workers: the processes of its session (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        # After the command's name: state, ppid, pgrp, session, ... utime (12th), stime (13th).
        if int(fields[3]) == process.pid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


# --- the load -------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    next_ms: list[float] = field(default_factory=list)
    label_ms: list[float] = field(default_factory=list)
    labels: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    handed: list[tuple[int, Any]] = field(default_factory=list)  # (reviewer, item id) per next answer
    seconds: float = 0.0
    cpu_seconds: float = float("nan")  # the server's, during the load
    note: str = ""

    def cpu_ms_per_label(self) -> float:
        return self.cpu_seconds * 1000 / self.labels if self.labels else float("nan")

    def double_assignments(self) -> int:
        """Items handed to more than one reviewer (overlap is 1, so any is a double assignment)."""
        reviewers_per_item: dict[Any, set[int]] = {}
        for reviewer, item in self.handed:
            reviewers_per_item.setdefault(item, set()).add(reviewer)
        return sum(1 for r in reviewers_per_item.values() if len(r) > 1)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


Next = Callable[[requests.Session], tuple[Any, Any] | None]  # -> (item id, handle for the label call)
Label = Callable[[requests.Session, Any], bool]


def run_load(name: str, tokens: list[str], next_item: Next, label: Label, seconds: float) -> Result:
    result = Result(name)
    lock = threading.Lock()
    start = threading.Barrier(len(tokens) + 1)
    deadline = 0.0

    def reviewer(index: int, token: str) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        mine_next: list[float] = []
        mine_label: list[float] = []
        handed: list[tuple[int, Any]] = []
        errors: Counter[str] = Counter()
        start.wait()
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                got = next_item(session)
            except Exception as exc:  # counted and reported; the load goes on
                errors[f"next: {type(exc).__name__}: {exc}"[:120]] += 1
                continue
            mine_next.append((time.perf_counter() - t0) * 1000)
            if got is None:
                break
            item, handle = got
            handed.append((index, item))
            t1 = time.perf_counter()
            try:
                ok = label(session, handle)
            except Exception as exc:  # as above
                errors[f"label: {type(exc).__name__}: {exc}"[:120]] += 1
                continue
            mine_label.append((time.perf_counter() - t1) * 1000)
            if not ok:
                errors["label refused"] += 1
        with lock:
            result.next_ms += mine_next
            result.label_ms += mine_label
            result.handed += handed
            result.errors.update(errors)
            result.labels += len(mine_label) - errors["label refused"]

    threads = [threading.Thread(target=reviewer, args=(i, t), daemon=True) for i, t in enumerate(tokens)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + seconds
    began = time.monotonic()
    start.wait()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - began
    return result


# --- our server (and the `before` peer: the same site at an earlier commit) -----------------------


def site_env(database: str, data_dir: str, *, sqlite: bool = False) -> dict[str, str]:
    """The server's environment: PostgreSQL's `database`, or (sqlite) the embedded default, a SQLite
    file in the run's own data folder."""
    drop = {"CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", *({"DATABASE_URL"} if sqlite else ())}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    if not sqlite:
        env.update(DATABASE_URL=f"{PG}/{database}", DB_POOL="true")
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_hex(32),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        DB_CONN_MAX_AGE="0",  # under ASGI each request runs in its own thread: kept connections would pile up
        DATA_DIR=str(WORK / data_dir),
        SECURE_SSL_REDIRECT="false",  # plain HTTP on the loopback (production's TLS ends at its proxy)
    )
    # DB_POOL (above, PostgreSQL only) as a deployment of ours runs: it is off by default
    # (docs/settings.md); the peer before it has no pool.
    # REDIS_URL, when set, is passed on (production has Redis; the API token cache needs it).
    return env


OUR_SETUP = """
import json, sys, time
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from review import services
from review.models import Completion
n, reviewers = int(sys.argv[1]), int(sys.argv[2])
t = time.time()
Completion.objects.bulk_create(
    [Completion(prompt=f"Prompt {i}", text=f"Story completion number {i}.", batch="bench") for i in range(n)],
    batch_size=5000,
)
admin = User.objects.create_superuser("bench-admin", "a@bench.test", "x")
queue = services.queue_create(created_by=admin, name="bench", policy="random", overlap=1, lease_seconds=300, seed=1)
group = Group.objects.get_or_create(name="reviewer")[0]
tokens = []
for i in range(reviewers):
    user = User.objects.create_user(f"bench-reviewer-{i}", password="x")
    user.groups.add(group)
    tokens.append(Token.objects.create(user=user).key)
print(json.dumps({"queue": queue.pk, "tokens": tokens, "setup_s": time.time() - t}))
"""


def peer_tree(commit: str) -> Path:
    """A git worktree of this repository at `commit`, beside the checkout (made once, moved to `commit`)."""
    if not (PEER_TREE / ".git").exists():
        log(f"before: git worktree add {PEER_TREE} {commit}")
        subprocess.run(["git", "worktree", "add", "--detach", str(PEER_TREE), commit], cwd=ROOT, check=True)
    else:
        subprocess.run(["git", "checkout", "-q", "--detach", commit], cwd=PEER_TREE, check=True)
    return PEER_TREE


def run_site(
    name: str, root: Path, database: str, items: int, reviewers: int, seconds: float, *, sqlite: bool = False
) -> Result:
    """Serve the site in `root` (its code, this checkout's .venv) on a fresh `database` (or a fresh
    SQLite file: the embedded default), and load it."""
    data_dir = f"{database}{'-sqlite' if sqlite else ''}-data"
    env = site_env(database, data_dir, sqlite=sqlite)
    python = str(ROOT / ".venv" / "bin" / "python")
    if sqlite:
        shutil.rmtree(WORK / data_dir, ignore_errors=True)
    else:
        fresh_database(database)
    # cwd=root: `manage.py` and `-m` put root first on sys.path, so root's code is what runs.
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=root, env=env, check=True)
    out = subprocess.run(
        [python, "-c", "import django; django.setup(); exec(open(0).read())", str(items), str(reviewers)],
        input=OUR_SETUP.encode(),
        cwd=root,
        env={**env, "DJANGO_SETTINGS_MODULE": "rebench_site.settings"},
        check=True,
        capture_output=True,
    ).stdout
    setup = json.loads(out.decode().strip().splitlines()[-1])
    log(f"{name}: {items} items, queue {setup['queue']} ready in {setup['setup_s']:.1f} s")
    port = free_port()
    server = subprocess.Popen(
        [python, "-m", "uvicorn", "rebench_site.asgi:application", "--port", str(port), "--workers", "2",
         "--no-access-log", "--log-level", "warning"],
        cwd=root, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/accounts/login/")
        queue = setup["queue"]

        def next_item(s: requests.Session) -> tuple[Any, Any] | None:
            r = s.post(f"{base}/api/review/queues/{queue}/next/", timeout=30)
            if r.status_code == 204:
                return None
            r.raise_for_status()
            body = r.json()
            return body["completion"], body["assignment"]

        def label(s: requests.Session, assignment: Any) -> bool:
            r = s.post(f"{base}/api/review/leases/{assignment}/label/", json={"value": "safe"}, timeout=30)
            return r.status_code == 201

        cpu_before = cpu_seconds(server)
        result = run_load(name, setup["tokens"], next_item, label, seconds)
        result.cpu_seconds = cpu_seconds(server) - cpu_before
    finally:
        stop(server)
    doubled = "SELECT count(*) FROM (SELECT item_id FROM review_label GROUP BY item_id HAVING count(*) > 1) d"
    if sqlite:
        with contextlib.closing(sqlite3.connect(WORK / data_dir / "db.sqlite3")) as lite:
            doubles = lite.execute(doubled).fetchone()[0]
            stored = lite.execute("SELECT count(*) FROM review_label").fetchone()[0]
    else:
        with psycopg.connect(f"{PG}/{database}") as conn:
            (doubles,) = _one(conn.execute(doubled))
            (stored,) = _one(conn.execute("SELECT count(*) FROM review_label"))
    result.note = f"labels stored {stored}; items with > 1 label in the database: {doubles}"
    return result


# --- Label Studio ---------------------------------------------------------------------------------


def ensure_label_studio() -> Path:
    python = LS_VENV / "bin" / "python"
    check = [str(python), "-c", "import label_studio, gunicorn; print(label_studio.__version__)"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    log(f"installing Label Studio {LS_VERSION} into {LS_VENV} (once)")
    subprocess.run([sys.executable, "-m", "venv", str(LS_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"label-studio=={LS_VERSION}", "gunicorn==23.0.0"], check=True
    )
    return python


LS_SETUP = """
import json, os, sys, time
import django
sys.path.insert(0, os.path.dirname(__import__("label_studio").__file__))
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from organizations.models import Organization
from projects.models import Project
from rest_framework.authtoken.models import Token
from tasks.models import Task
from users.models import User
n, reviewers = int(sys.argv[1]), int(sys.argv[2])
t = time.time()
owner = User.objects.create_superuser(email="owner@bench.test", password="x")
org = Organization.create_organization(created_by=owner, title="bench")
owner.active_organization = org
owner.save()
try:  # legacy token auth, as `label-studio start --user-token` uses
    jwt = org.jwt
    jwt.legacy_api_tokens_enabled = True
    jwt.save()
except Exception:
    pass
config = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="label" toName="text"><Choice value="injurious"/><Choice value="safe"/>'
    '<Choice value="unsure"/></Choices></View>'
)
project = Project.objects.create(
    title="bench", label_config=config, created_by=owner, organization=org, maximum_annotations=1
)
Task.objects.bulk_create(
    [Task(data={"prompt": f"Prompt {i}", "text": f"Story completion number {i}."}, project=project, inner_id=i + 1)
     for i in range(n)],
    batch_size=5000,
)
tokens = []
for i in range(reviewers):
    user = User.objects.create_user(email=f"reviewer{i}@bench.test", password="x")
    org.add_user(user)
    user.active_organization = org
    user.save()
    tokens.append(Token.objects.get_or_create(user=user)[0].key)
print(json.dumps({"project": project.pk, "tokens": tokens, "setup_s": time.time() - t}))
"""


def ls_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE_URL", "REDIS"))}
    user, _, rest = PG.removeprefix("postgres://").partition("@")
    host, _, port = rest.partition(":")
    env.update(
        DJANGO_SETTINGS_MODULE="label_studio.core.settings.label_studio",
        DJANGO_DB="default",
        POSTGRE_NAME=LS_DB,
        POSTGRE_USER=user or "postgres",
        POSTGRE_PASSWORD="",
        POSTGRE_HOST=host or "127.0.0.1",
        POSTGRE_PORT=port or "5432",
        LABEL_STUDIO_BASE_DATA_DIR=str(WORK / "label-studio-data"),
        DEBUG="false",
        LOG_LEVEL="WARNING",
        DISABLE_SIGNUP_WITHOUT_LINK="true",
        SECRET_KEY=secrets.token_hex(16),
        # Nothing leaves this machine: no error reporting, analytics or version check.
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        COLLECT_ANALYTICS="false",
        LATEST_VERSION_CHECK="false",
    )
    return env


def run_label_studio(items: int, reviewers: int, seconds: float) -> Result:
    python = ensure_label_studio()
    env = ls_env()
    fresh_database(LS_DB)
    # cwd=WORK: Label Studio writes a `version_.py` into its working directory, which here would be
    # the checkout (where the linter then reads it).
    out = subprocess.run(
        [str(python), "-c", LS_SETUP, str(items), str(reviewers)], env=env, check=True, capture_output=True, cwd=WORK
    ).stdout
    setup = json.loads(out.decode().strip().splitlines()[-1])
    log(f"Label Studio: {items} tasks, project {setup['project']} ready in {setup['setup_s']:.1f} s")
    port = free_port()
    ls_log = (WORK / "label-studio-server.log").open("wb")  # its own log lines (warnings) stay out of the report
    ls_path = subprocess.run(
        [str(python), "-c", "import label_studio, os; print(os.path.dirname(label_studio.__file__))"],
        capture_output=True, check=True, text=True, cwd=WORK,
    ).stdout.strip()  # fmt: skip
    server = subprocess.Popen(
        [str(LS_VENV / "bin" / "gunicorn"), "label_studio.core.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "4", "--log-level", "warning", "--pythonpath", ls_path],
        env=env, start_new_session=True, stdout=ls_log, stderr=subprocess.STDOUT, cwd=WORK,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/user/login/")
        project = setup["project"]

        def next_item(s: requests.Session) -> tuple[Any, Any] | None:
            r = s.get(f"{base}/api/projects/{project}/next", timeout=30)
            if r.status_code == 404:
                return None
            r.raise_for_status()
            task = r.json()
            return task["id"], task["id"]

        def label(s: requests.Session, task: Any) -> bool:
            body: dict[str, Any] = {
                "result": [
                    {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["safe"]}}
                ],
                "lead_time": 1.0,
            }
            r = s.post(f"{base}/api/tasks/{task}/annotations/?project={project}", json=body, timeout=30)
            return r.status_code == 201

        cpu_before = cpu_seconds(server)
        result = run_load(f"Label Studio {LS_VERSION}", setup["tokens"], next_item, label, seconds)
        result.cpu_seconds = cpu_seconds(server) - cpu_before
    finally:
        stop(server)
        ls_log.close()
    with psycopg.connect(f"{PG}/{LS_DB}") as conn:
        (doubles,) = _one(
            conn.execute(
                "SELECT count(*) FROM (SELECT task_id FROM task_completion GROUP BY task_id HAVING count(*) > 1) d"
            )
        )
        (stored,) = _one(conn.execute("SELECT count(*) FROM task_completion"))
    result.note = f"annotations stored {stored}; tasks with > 1 annotation in the database: {doubles}"
    return result


# --- report ---------------------------------------------------------------------------------------


def report(ours: Result, peer: Result | None, peer_error: str) -> None:
    rows = [ours] + ([peer] if peer else [])
    width = max(24, *(len(r.name) + 2 for r in rows))
    print()
    print(
        f"{'':<{width}}{'next p50':>10}{'next p99':>10}{'label p50':>11}{'label p99':>11}{'labels/s':>10}"
        f"{'double':>8}{'CPU ms/label':>14}"
    )
    for r in rows:
        print(
            f"{r.name:<{width}}{pct(r.next_ms, 0.5):>8.1f}ms{pct(r.next_ms, 0.99):>8.1f}ms"
            f"{pct(r.label_ms, 0.5):>9.1f}ms{pct(r.label_ms, 0.99):>9.1f}ms{r.labels / r.seconds:>10.1f}"
            f"{r.double_assignments():>8}{r.cpu_ms_per_label():>14.1f}"
        )
    for r in rows:
        print(f"  {r.name}: {r.labels} labels in {r.seconds:.1f} s; {r.note}")
        for message, count in r.errors.most_common(5):
            print(f"    error ×{count}: {message}")
    if peer is None:
        print(f"\nPeer: NOT MEASURED ({peer_error}). Only our side's numbers above; no ratio.")
        return

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}×" if b else "n/a"

    print()
    print(f"ratios ours / {peer.name} (below 1 is better for times and CPU, above 1 for labels/s):")
    print(f"  next p50      {ratio(pct(ours.next_ms, 0.5), pct(peer.next_ms, 0.5))}")
    print(f"  next p99      {ratio(pct(ours.next_ms, 0.99), pct(peer.next_ms, 0.99))}")
    print(f"  label p50     {ratio(pct(ours.label_ms, 0.5), pct(peer.label_ms, 0.5))}")
    print(f"  label p99     {ratio(pct(ours.label_ms, 0.99), pct(peer.label_ms, 0.99))}")
    print(f"  labels/s      {ratio(ours.labels / ours.seconds, peer.labels / peer.seconds)}")
    print(f"  CPU ms/label  {ratio(ours.cpu_ms_per_label(), peer.cpu_ms_per_label())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--reviewers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--peer", choices=["before", "label-studio"], default="before")
    parser.add_argument("--peer-commit", default=PEER_COMMIT, help="the commit the `before` peer serves")
    parser.add_argument("--no-peer", action="store_true", help="measure our side only")
    parser.add_argument(
        "--sqlite",
        action="store_true",
        help="both sites on the embedded default (SQLite) instead; Label Studio isn't run with it",
    )
    parser.add_argument(
        "--quiet-load", type=float, default=1.5, help="wait (up to 10 min) for a 1-minute load below this; 0: don't"
    )
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if args.quiet_load:
        waited_until = time.monotonic() + 600
        while os.getloadavg()[0] >= args.quiet_load and time.monotonic() < waited_until:
            time.sleep(5)
    log(f"load at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    log(f"{args.reviewers} reviewers × {args.seconds:.0f} s over {args.items} items, overlap 1")
    ours = run_site(
        "rebench_site" + (" (SQLite)" if args.sqlite else ""),
        ROOT,
        OUR_DB,
        args.items,
        args.reviewers,
        args.seconds,
        sqlite=args.sqlite,
    )
    peer, peer_error = None, "skipped with --no-peer" if args.no_peer else "Label Studio isn't run with --sqlite"
    if not args.no_peer and not (args.sqlite and args.peer == "label-studio"):
        try:
            if args.peer == "before":
                tree = peer_tree(args.peer_commit)
                name = f"rebench_site@{args.peer_commit}" + (" (SQLite)" if args.sqlite else "")
                peer = run_site(name, tree, PEER_DB, args.items, args.reviewers, args.seconds, sqlite=args.sqlite)
            else:
                peer = run_label_studio(args.items, args.reviewers, args.seconds)
        except Exception as exc:  # the report says plainly the peer wasn't measured
            peer_error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, subprocess.CalledProcessError) and exc.stderr:
                peer_error += " — " + exc.stderr.decode(errors="replace").strip().splitlines()[-1]
    report(ours, peer, peer_error)


if __name__ == "__main__":
    main()
