"""Scorer for ai_rd_rust_codecontests_inference: run the expert's scaffold on held-out problems, judge its Rust.

The trusted half: it holds the real API key and the held-out problems, and never runs the expert's
code. For each problem (`concurrency` at a time) it asks the workstation's harness for two runs in
the attempt's sandbox, each as the attempt's user, with no network and none of this folder:

1. the scaffold (harness/run_scaffold.py runs `python scaffold.py` in the live workspace): the
   problem's public view on stdin (name, description, public examples, limits; never the hidden
   tests), the Rust program on stdout. Its only way out is a bridge from 127.0.0.1:PORT to the
   budget proxy this scorer runs on a Unix socket in the exchange folder: OPENAI_BASE_URL and a
   one-run OPENAI_API_KEY that the proxy accepts, never the real key.
2. the answer (harness/judge_answer.py): the program extracted here is compiled and run on the
   tests' inputs only, under judge.py's limits; what it printed comes back and is compared here
   with the expected outputs, which never leave this side.

Score = fraction of held-out problems solved.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import dataclasses
import json
import os
import re
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import judge  # noqa: E402 - beside this file, found once HERE is on the path
from common import harness, llm  # noqa: E402 - copied beside this file (uses_common)

if TYPE_CHECKING:  # the package as mypy sees it; at run time, `common` is copied beside this file
    from environments.common.result import emit
else:
    from common.result import emit

API_KEY_VARIABLE = "RUST_CODECONTESTS_API_KEY"
SCAFFOLD = "scaffold.py"
OUTPUT_LIMIT = 256 * 1024
REPORT_LIMIT = 1024 * 1024
PR_SET_DUMPABLE = 4
FENCE = re.compile(r"```(?:rust|rs)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
SCRIPTS = HERE / "harness"
# What judge_answer.py needs beside it in the harness: itself and the judge (judge.py imports judge_sandbox.py).
JUDGE_SCRIPTS = ("judge_answer.py", "judge.py", "judge_sandbox.py")
PROXY_SOCKET = "llm.sock"
# The scaffold's own time limit is kept by run_scaffold.py; the instance gets this much more
# (starting the sandbox and the bridge) before the workstation kills it whole.
HARNESS_GRACE_SECONDS = 30
MISSING_SCAFFOLD = f"No {SCAFFOLD} in the workspace."


def load_configuration() -> dict[str, Any]:
    path = HERE / "configuration.json"
    return json.loads(path.read_text()) if path.exists() else {"params": {}, "paths": {}, "settings": {}}


def load_problems(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    problems = []
    with path.open() as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number} is not a JSON line: {exc}") from None
            if not isinstance(row, dict) or not row.get("name") or not row.get("description"):
                raise ValueError(f"{path}:{number} has no name or description.")
            problems.append(row)
            if limit and len(problems) >= limit:
                break
    return problems


def public_view(problem: dict[str, Any]) -> dict[str, Any]:
    """What the scaffold may see: the statement, the public examples and the limits."""
    keys = ("name", "description", "public_tests", "time_limit", "memory_limit_bytes")
    return {k: problem[k] for k in keys if k in problem}


def extract_rust(output: str) -> str:
    """The program in a scaffold's output: its last fenced block if it printed one, else all of it."""
    blocks = FENCE.findall(output)
    return (blocks[-1] if blocks else output).strip()


def make_unreadable() -> None:
    """Make this process non-dumpable: nothing else running as its user may read its memory (the key).

    No expert code runs beside it any more (the harness has its own sandbox instance); this stays
    as a second wall.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def free_port() -> int:
    """A port for one scaffold's bridge. Inside the sandbox any port would do (each instance has its
    own loopback); an unsandboxed stand-in (measure.local_harness) shares this host's, where two
    scaffolds at once need two."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def harness_inputs(name: str, scripts: tuple[str, ...]) -> Path:
    """A fresh inputs folder for one harness run, holding its scripts.

    The scripts travel as inputs (/run/rebench/in) rather than from /opt/rebench/harness: the
    workstation binds that from the protected scorer copy, which the harness's user can't enter.
    """
    folder: Path = harness.inputs(name)
    for script in scripts:
        shutil.copyfile(SCRIPTS / script, folder / script)  # judge*.py are links to ../judge*.py: their text
    return folder


def _read_capped(path: Path, limit: int) -> bytes | None:
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        return handle.read(limit + 1)


def run_scaffold(
    index: int, problem: dict[str, Any], env: dict[str, str], *, timeout: float, memory_bytes: int
) -> tuple[str | None, str]:
    """(stdout, "") or (None, why the scaffold failed on this problem)."""
    name = f"scaffold-{index}"
    folder = harness_inputs(name, ("run_scaffold.py",))
    (folder / "problem.json").write_text(json.dumps(public_view(problem)))
    port = free_port()
    result = harness.run(
        [
            sys.executable,
            "-E",  # the wrapper is ours: no PYTHON* variable, user site or workspace module changes it
            "-s",
            f"{harness.INPUTS}/run_scaffold.py",
            f"{harness.INPUTS}/problem.json",
            harness.OUTPUTS,
            f"{timeout:g}",
            str(memory_bytes),
        ],
        inputs_folder=name,
        timeout=timeout + HARNESS_GRACE_SECONDS,
        bridges=[(port, PROXY_SOCKET)],
        env={**env, "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1"},
        memory_gb=memory_bytes / 1024**3 + 1,
    )
    shutil.rmtree(folder, ignore_errors=True)
    if result.timed_out:
        return None, f"the scaffold ran past {timeout:g} s"
    raw = _read_capped(result.output_dir / "status.json", REPORT_LIMIT)
    try:
        status = json.loads(raw) if raw is not None and len(raw) <= REPORT_LIMIT else None
    except ValueError:
        status = None
    if not isinstance(status, dict):
        if result.out_of_memory:
            return None, "the scaffold ran out of memory"
        return None, f"the scaffold's harness failed (exit status {result.returncode}): {result.stderr_tail(1)[:300]}"
    if status.get("missing") is True:
        return None, MISSING_SCAFFOLD
    if status.get("timed_out") is True:
        return None, f"the scaffold ran past {timeout:g} s"
    returncode = status.get("returncode")
    if returncode != 0:
        stderr = str(status.get("stderr") or "")
        last = stderr.splitlines()[-1] if stderr.strip() else ""
        return None, f"the scaffold exited with status {returncode}{': ' + last[:300] if last else ''}"
    stdout = _read_capped(result.output_dir / "stdout", OUTPUT_LIMIT) or b""
    if len(stdout) > OUTPUT_LIMIT:
        return None, f"the scaffold printed more than {OUTPUT_LIMIT // 1024} KB"
    return stdout.decode("utf-8", "replace"), ""


def judge_answer(
    index: int, source: str, tests: list[tuple[str, str]], *, rustc: str, limits: judge.Limits
) -> judge.Verdict:
    """Compile and run `source` in the harness on the tests' inputs; compare here with their outputs."""
    refused = judge.precheck(source, tests)
    if refused is not None:
        return refused
    name = f"judge-{index}"
    folder = harness_inputs(name, JUDGE_SCRIPTS)
    (folder / "main.rs").write_text(source)
    (folder / "tests").mkdir()
    for number, (given, _expected) in enumerate(tests):
        (folder / "tests" / f"{number}.in").write_text(given)
    spec = {"rustc": rustc, "limits": dataclasses.asdict(limits), "tests": len(tests)}
    (folder / "answer.json").write_text(json.dumps(spec))
    timeout = judge.harness_seconds(limits, len(tests))
    result = harness.run(
        [sys.executable, "-E", "-s", f"{harness.INPUTS}/judge_answer.py", harness.INPUTS, harness.OUTPUTS],
        inputs_folder=name,
        timeout=timeout,
    )
    shutil.rmtree(folder, ignore_errors=True)
    raw = _read_capped(result.output_dir / "result.json", REPORT_LIMIT)
    try:
        report = json.loads(raw) if raw is not None and len(raw) <= REPORT_LIMIT else None
    except ValueError:
        report = None
    if result.timed_out or result.returncode != 0 or not isinstance(report, dict):
        why = f"ran past {timeout:g} s" if result.timed_out else f"exit status {result.returncode}"
        tail = result.stderr_tail(1)[:300]
        return judge.Verdict(False, f"the judge could not finish ({why}){': ' + tail if tail else ''}", 0, len(tests))
    verdict = judge.verdict_from(report, result.output_dir, [expected for _given, expected in tests], limits=limits)
    verdict.seconds = result.duration
    if report.get("landlock") == 0:
        verdict.details["unconfined"] = "no Landlock here: the answer could write outside its test's folder"
    return verdict


def main(workspace: Path) -> dict[str, Any]:
    """Score the live workspace through the harness; `workspace` (the empty snapshot) is not read."""
    key = os.environ.pop(API_KEY_VARIABLE, "")
    make_unreadable()
    config = load_configuration()
    params, paths, settings = config.get("params", {}), config.get("paths", {}), config.get("settings", {})
    url = str(settings.get("model_url") or "")
    if not url:
        return {
            "score": None,
            "message": "This environment needs a model endpoint: set RUST_CODECONTESTS_MODEL_URL (an "
            "OpenAI-compatible …/v1 URL) on the workstation. The small configuration can use the scripted "
            "model (scripted_model/serve.py).",
        }
    try:
        rustc = judge.find_rustc(str(settings.get("rustc") or ""))
    except judge.JudgeUnavailable as exc:
        return {"score": None, "message": str(exc)}
    dataset = Path(paths["dataset"]) if paths.get("dataset") else HERE / str(params.get("problems", ""))
    try:
        problems = load_problems(dataset, params.get("max_problems"))
    except (OSError, ValueError) as exc:
        return {"score": None, "message": f"The held-out problems can't be read: {exc}"}
    if not problems:
        return {"score": None, "message": f"No held-out problems in {dataset}."}

    budget = llm.Budget(
        max_tokens=int(settings["budget_tokens"]) if settings.get("budget_tokens") else None,
        max_cost=float(settings["budget_cost"]) if settings.get("budget_cost") else None,
        prices=llm.Prices(float(settings.get("price_input") or 0), float(settings.get("price_output") or 0)),
    )
    try:
        upstream = llm.ChatClient(
            url, api_key=key, model=str(settings.get("model") or ""), timeout=float(params.get("request_timeout", 120))
        )
    except llm.EndpointError as exc:
        return {"score": None, "message": str(exc)}
    limits = judge.Limits(opt_level=int(params.get("opt_level", 1)))
    time_scale = float(params.get("time_scale", 1.0))
    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    max_completion = int(params.get("max_completion_tokens", 4096))
    socket_path = harness.exchange() / PROXY_SOCKET
    with llm.BudgetProxy(upstream, budget, max_completion_tokens=max_completion, unix_socket=socket_path) as proxy:
        env = {"OPENAI_API_KEY": proxy.token, "OPENAI_MODEL": upstream.model, "RUSTC": rustc}

        def attempt(numbered: tuple[int, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
            index, problem = numbered
            output, failure = run_scaffold(
                index,
                problem,
                env,
                timeout=float(params.get("scaffold_timeout_seconds", 120)),
                memory_bytes=int(float(params.get("scaffold_memory_gb", 4)) * 1024**3),
            )
            if output is None:
                return problem["name"], {"solved": False, "reason": failure, "scaffold_failed": True}
            tests = judge.problem_tests(problem)
            scaled = limits.for_problem(problem, time_scale)
            verdict = judge_answer(index, extract_rust(output), tests, rustc=rustc, limits=scaled)
            return problem["name"], verdict.as_dict()

        workers = max(1, int(params.get("concurrency", 1)))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            for name, result in pool.map(attempt, enumerate(problems)):
                results[name] = result
        spend = budget.summary()
        spend["upstream_errors"] = proxy.upstream_errors
    solved = sorted(name for name, r in results.items() if r["solved"])
    failed_scaffold = [r["reason"] for r in results.values() if r.get("scaffold_failed")]
    details = {
        "solved": len(solved),
        "problems": len(problems),
        "solved_names": solved,
        "per_problem": results,
        "budget": spend,
        "configuration": config.get("name", ""),
        "seconds": round(time.monotonic() - started, 2),
    }
    if len(failed_scaffold) == len(problems) and all(reason == MISSING_SCAFFOLD for reason in failed_scaffold):
        return {"score": None, "message": MISSING_SCAFFOLD, "details": details}
    if len(failed_scaffold) == len(problems):
        return {
            "score": None,
            "message": f"The scaffold failed on every held-out problem; the first: {failed_scaffold[0]}",
            "details": details,
        }
    used = f"{spend['spent_tokens']} tokens" + (f" of {spend['max_tokens']}" if spend["max_tokens"] else "")
    message = f"Solved {len(solved)} of {len(problems)} held-out problems; the model used {used}."
    if spend["refused"]:
        message += f" The budget refused {spend['refused']} request(s)."
    return {"score": len(solved) / len(problems), "message": message, "details": details}


if __name__ == "__main__":
    emit(lambda: main(Path(sys.argv[1]).resolve()))
