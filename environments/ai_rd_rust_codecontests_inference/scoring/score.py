"""Scorer for ai_rd_rust_codecontests_inference: run the expert's module on held-out problems, judge its Rust.

The trusted half: it holds the real API key and the held-out problems, and never runs the expert's
code. It asks the workstation's harness for runs in the attempt's sandbox, each as the attempt's
user, with no network and none of this folder:

1. the solution (harness/run_solution.py), once for every problem: it imports
   `solve_code_contests_rust.py` from the live workspace and awaits `generate_solution(client,
   semaphore, problem)` per problem, as RE-Bench's scorer does, with each problem's public view
   (name, description, public examples, limits; never the hidden tests). The client's only way out
   is a bridge from 127.0.0.1:PORT to the budget proxy this scorer runs on a Unix socket in the
   exchange folder: OPENAI_BASE_URL and a one-run key that the proxy accepts, never the real key.
2. each answer (harness/judge_answer.py), `concurrency` at a time: the returned program is compiled
   and run on the tests' inputs only, under judge.py's limits; what it printed comes back and is
   compared here with the expected outputs, which never leave this side.

Score = fraction of held-out problems solved.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import dataclasses
import json
import os
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
    from environments.common.result import attempt_spend_before, emit
else:
    from common.result import attempt_spend_before, emit

API_KEY_VARIABLE = "RUST_CODECONTESTS_API_KEY"
SOLUTION = "solve_code_contests_rust.py"
OUTPUT_LIMIT = 256 * 1024
REPORT_LIMIT = 1024 * 1024
PR_SET_DUMPABLE = 4
SCRIPTS = HERE / "harness"
# What judge_answer.py needs beside it in the harness: itself and the judge (judge.py imports judge_sandbox.py).
JUDGE_SCRIPTS = ("judge_answer.py", "judge.py", "judge_sandbox.py")
PROXY_SOCKET = "llm.sock"
# The whole run's time limit; the instance gets this much more (starting the sandbox and the bridge)
# before the workstation kills it whole.
HARNESS_GRACE_SECONDS = 30
MISSING_SOLUTION = f"No {SOLUTION} in the workspace."


def load_configuration() -> dict[str, Any]:
    path = HERE / "configuration.json"
    return json.loads(path.read_text()) if path.exists() else {"params": {}, "paths": {}, "settings": {}}


def budget_words(tokens: int | None, cost: float | None) -> str:
    """The attempt's budget in words: "200000 tokens", "$500.00" or both."""
    parts = ([f"{tokens} tokens"] if tokens is not None else []) + ([f"${cost:.2f}"] if cost is not None else [])
    return " and ".join(parts) or "no limit"


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
    """What the expert's module may see: the statement, the public examples and the limits."""
    keys = ("name", "description", "public_tests", "time_limit", "memory_limit_bytes")
    return {k: problem[k] for k in keys if k in problem}


def make_unreadable() -> None:
    """Make this process non-dumpable: nothing else running as its user may read its memory (the key).

    No expert code runs beside it any more (the harness has its own sandbox instance); this stays
    as a second wall.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def free_port() -> int:
    """A port for the solution's bridge. Inside the sandbox any port would do (each instance has its
    own loopback); an unsandboxed stand-in (measure.local_harness) shares this host's, where two
    scoring runs at once need two."""
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


class SolutionRun:
    """What the harness brought back: the module's load failure, or each problem's program or failure.

    A plain class: the scorer is loaded from a file without a module entry, where dataclasses fail.
    """

    def __init__(self, load_error: str = "") -> None:
        self.load_error = load_error
        self.programs: dict[int, str] = {}
        self.failures: dict[int, str] = {}


def run_solution(problems: list[dict[str, Any]], env: dict[str, str], *, params: dict[str, Any]) -> SolutionRun:
    """Import the expert's module in a harness instance and await its generate_solution for every problem."""
    name = "solution"
    folder = harness_inputs(name, ("run_solution.py",))
    (folder / "problems.json").write_text(json.dumps([public_view(p) for p in problems]))
    port = free_port()
    timeout = float(params.get("solution_timeout_seconds", 600))
    per_problem = float(params.get("problem_timeout_seconds", 120))
    memory_gb = float(params.get("solution_memory_gb", 4))
    result = harness.run(
        [
            sys.executable,
            # Not -E: the module imports what the expert's shell python imports (openai among the
            # packages the sandbox's PYTHONPATH shares), as it does when the expert runs evaluate.py.
            "-s",
            f"{harness.INPUTS}/run_solution.py",
            f"{harness.INPUTS}/problems.json",
            harness.OUTPUTS,
            str(max(1, int(params.get("concurrency", 1)))),
            f"{per_problem:g}",
            f"{float(params.get('request_timeout', 120)):g}",
            f"{timeout:g}",
        ],
        inputs_folder=name,
        timeout=timeout + HARNESS_GRACE_SECONDS,
        bridges=[(port, PROXY_SOCKET)],
        env={**env, "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1"},
        memory_gb=memory_gb + 1,
    )
    shutil.rmtree(folder, ignore_errors=True)
    raw = _read_capped(result.output_dir / "loaded.json", REPORT_LIMIT)
    try:
        loaded = json.loads(raw) if raw is not None and len(raw) <= REPORT_LIMIT else None
    except ValueError:
        loaded = None
    if not isinstance(loaded, dict):
        if result.out_of_memory:
            return SolutionRun(load_error="the solution ran out of memory while loading")
        if result.timed_out:
            return SolutionRun(load_error=f"loading the solution ran past {timeout:g} s")
        return SolutionRun(
            load_error=f"the solution's harness failed (exit status {result.returncode}): {result.stderr_tail(1)[:300]}"
        )
    if loaded.get("missing") is True:
        return SolutionRun(load_error=MISSING_SOLUTION)
    if loaded.get("loaded") is not True:
        return SolutionRun(load_error=f"Failed to load solution module: {str(loaded.get('error'))[:1000]}")
    # Whatever came back: answers written before a time-out or a crash still count.
    run = SolutionRun()
    if result.timed_out or (result.output_dir / "cut.json").is_file():
        unfinished = f"the solution ran past {timeout:g} s before answering"
    elif result.out_of_memory:
        unfinished = "the solution ran out of memory before answering"
    else:
        tail = result.stderr_tail(1)[:300]
        unfinished = f"the solution's process ended (exit status {result.returncode}) before answering" + (
            f": {tail}" if tail else ""
        )
    answers = result.output_dir / "answers"
    for index in range(len(problems)):
        program = _read_capped(answers / f"{index}.rs", OUTPUT_LIMIT)
        if program is not None:
            if len(program) > OUTPUT_LIMIT:
                run.failures[index] = f"generate_solution returned more than {OUTPUT_LIMIT // 1024} KB"
            else:
                run.programs[index] = program.decode("utf-8", "replace")
            continue
        raw = _read_capped(answers / f"{index}.json", REPORT_LIMIT)
        try:
            report = json.loads(raw) if raw is not None and len(raw) <= REPORT_LIMIT else None
        except ValueError:
            report = None
        error = report.get("error") if isinstance(report, dict) else None
        run.failures[index] = str(error)[:1000] if isinstance(error, str) else unfinished
    return run


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

    # The budget is the attempt's, as RE-Bench's credit is: this run gets what the attempt's earlier
    # runs and the expert's calls from the shell left.
    before = attempt_spend_before()
    total_tokens, total_cost, prices = llm.budget_limits(settings)
    left_tokens = None if total_tokens is None else total_tokens - int(before["tokens"])
    left_cost = None if total_cost is None else round(total_cost - before["cost"], 6)
    if (left_tokens is not None and left_tokens <= 0) or (left_cost is not None and left_cost <= 0):
        spent = f"{int(before['tokens'])} tokens" + (f" (${before['cost']:.2f})" if total_cost is not None else "")
        return {
            "score": None,
            "message": f"The attempt's model budget is spent: it has used {spent} of "
            f"{budget_words(total_tokens, total_cost)}. Nothing was run.",
            "details": {"attempt_spend": {"tokens": 0, "cost": 0.0}, "attempt_spent_before": before},
        }
    budget = llm.Budget(
        max_tokens=left_tokens,
        max_cost=left_cost,
        prices=prices,
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
    max_completion = int(params.get("max_completion_tokens", 4096))
    socket_path = harness.exchange() / PROXY_SOCKET
    with llm.BudgetProxy(upstream, budget, max_completion_tokens=max_completion, unix_socket=socket_path) as proxy:
        env = {"OPENAI_API_KEY": proxy.token, "OPENAI_MODEL": upstream.model, "RUSTC": rustc}
        solution = run_solution(problems, env, params=params)
        spend = budget.summary()
        spend["upstream_errors"] = proxy.upstream_errors
    details: dict[str, Any] = {
        "problems": len(problems),
        "budget": spend,
        # What the site counts against the attempt's budget (graders.selectors.attempt_model_spend).
        "attempt_spend": {"tokens": spend["spent_tokens"], "cost": spend["spent_cost"]},
        "attempt_spent_before": before,
        "configuration": config.get("name", ""),
    }
    if solution.load_error:
        details["seconds"] = round(time.monotonic() - started, 2)
        return {"score": None, "message": solution.load_error, "details": details}

    def judged(index: int) -> tuple[str, dict[str, Any]]:
        problem = problems[index]
        if index not in solution.programs:
            return problem["name"], {"solved": False, "reason": solution.failures[index], "solution_failed": True}
        tests = judge.problem_tests(problem)
        scaled = limits.for_problem(problem, time_scale)
        verdict = judge_answer(index, solution.programs[index], tests, rustc=rustc, limits=scaled)
        return problem["name"], verdict.as_dict()

    workers = max(1, int(params.get("concurrency", 1)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        results = dict(pool.map(judged, range(len(problems))))
    solved = sorted(name for name, r in results.items() if r["solved"])
    failed = [r["reason"] for r in results.values() if r.get("solution_failed")]
    details.update(
        solved=len(solved),
        solved_names=solved,
        per_problem=results,
        seconds=round(time.monotonic() - started, 2),
    )
    if len(failed) == len(problems):
        return {
            "score": None,
            "message": f"The solution failed on every held-out problem; the first: {failed[0]}",
            "details": details,
        }
    message = (
        f"Solved {len(solved)} of {len(problems)} held-out problems; the model used {spend['spent_tokens']} tokens"
    )
    if total_tokens is not None or total_cost is not None:
        used = f"{int(before['tokens']) + spend['spent_tokens']} tokens"
        if total_cost is not None:
            used += f" and ${before['cost'] + spend['spent_cost']:.2f}"
        message += f" (the attempt has used {used} of {budget_words(total_tokens, total_cost)})"
    message += "."
    if spend["refused"]:
        message += f" The budget refused {spend['refused']} request(s)."
    return {"score": len(solved) / len(problems), "message": message, "details": details}


if __name__ == "__main__":
    emit(lambda: main(Path(sys.argv[1]).resolve()))
