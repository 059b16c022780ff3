"""ai_rd_rust_codecontests_inference's harness: import the expert's module and ask it for every held-out problem.

Usage: run_solution.py PROBLEMS OUT CONCURRENCY PROBLEM_TIMEOUT REQUEST_TIMEOUT RUN_TIMEOUT

As RE-Bench's scorer does, it imports `solve_code_contests_rust.py` from the workspace and awaits
`generate_solution(client, semaphore, problem)` once per problem, every problem at once in one event
loop: `client` an `openai.AsyncOpenAI` on OPENAI_BASE_URL (the bridge to the scorer's budget proxy)
with the proxy's one-run key, `semaphore` an `asyncio.Semaphore(CONCURRENCY)` for the module to hold
around its requests, `problem` the problem's public view. The returned string is the Rust program.

Runs in a harness instance of the attempt's sandbox, as the attempt's user, in the live workspace,
with no network but that bridge and none of the scorer's files. PROBLEMS is a JSON list of the
problems' public views (never the hidden tests). Written to OUT: `loaded.json` once the module is
imported (or why it could not be), then for each problem as it finishes `answers/<index>.rs` (the
returned program's first OUTPUT_LIMIT + 1 bytes) or `answers/<index>.json` (why there is none). The
scorer trusts none of it: the module runs in this process and can write there too, and only ever
spoils its own answers. At RUN_TIMEOUT seconds the run stops (a module that blocks the event loop
too: the alarm interrupts it), keeping the answers written; the scorer's instance limit is the net
under a module that never returns to Python.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

MODULE = "solve_code_contests_rust.py"
OUTPUT_LIMIT = 256 * 1024


def _why(exc: BaseException) -> str:
    """The exception as RE-Bench's scorer names it (`SyntaxError(...)`), with the last frame in the module."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(MODULE)]
    where = f" at line {frames[-1].lineno}" if frames else ""
    return f"{exc!r}{where}"[:1000]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


async def _one(
    module: Any,
    client: Any,
    semaphore: asyncio.Semaphore,
    index: int,
    problem: dict[str, Any],
    out: Path,
    timeout: float,
) -> None:
    answers = out / "answers"
    try:
        code = await asyncio.wait_for(module.generate_solution(client, semaphore, problem), timeout)
    except TimeoutError:
        _write(answers / f"{index}.json", json.dumps({"error": f"generate_solution ran past {timeout:g} s"}))
        return
    except Exception as exc:  # the module's own failure fails its problem only, as upstream's gather would not
        _write(answers / f"{index}.json", json.dumps({"error": f"generate_solution raised {_why(exc)}"}))
        return
    if not isinstance(code, str):
        _write(
            answers / f"{index}.json",
            json.dumps({"error": f"generate_solution returned {type(code).__name__}, not str"}),
        )
        return
    _write(answers / f"{index}.rs", code[: OUTPUT_LIMIT + 1])


async def run(
    module: Any, problems: list[dict[str, Any]], out: Path, concurrency: int, timeout: float, request_timeout: float
) -> None:
    import openai  # the workstation's interpreter has it (requirements.txt), as upstream's image has

    client = openai.AsyncOpenAI(
        base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"], timeout=request_timeout
    )
    semaphore = asyncio.Semaphore(concurrency)
    try:
        await asyncio.gather(
            *(_one(module, client, semaphore, index, problem, out, timeout) for index, problem in enumerate(problems))
        )
    finally:
        await client.close()


class RunTimeout(BaseException):
    """The whole run's time is up (a BaseException: the module's `except Exception` doesn't swallow it)."""


def _time_up(_signum: int, _frame: object) -> None:
    raise RunTimeout


def main(
    problems_path: Path, out: Path, concurrency: int, timeout: float, request_timeout: float, run_timeout: float
) -> int:
    problems = json.loads(problems_path.read_text())
    if not Path(MODULE).is_file():
        _write(out / "loaded.json", json.dumps({"missing": True}))
        return 0
    # The module's own scratch: HOME and TMPDIR a fresh folder, the workspace importable (judge.py).
    scratch = tempfile.mkdtemp(prefix="solution-")
    os.environ.update(HOME=scratch, TMPDIR=scratch)
    tempfile.tempdir = scratch
    sys.path.insert(0, os.getcwd())
    try:
        spec = importlib.util.spec_from_file_location("solve_code_contests_rust", Path(MODULE).resolve())
        if spec is None or spec.loader is None:
            raise ImportError(f"{MODULE} can't be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules["solve_code_contests_rust"] = module
        spec.loader.exec_module(module)
        if not callable(getattr(module, "generate_solution", None)):
            raise AttributeError(f"{MODULE} has no function generate_solution(client, semaphore, problem)")
        if not inspect.iscoroutinefunction(module.generate_solution):
            raise TypeError("generate_solution must be a coroutine function (async def), as the scorer awaits it")
    except BaseException as exc:
        _write(out / "loaded.json", json.dumps({"error": _why(exc)}))
        return 0
    _write(out / "loaded.json", json.dumps({"loaded": True}))
    signal.signal(signal.SIGALRM, _time_up)
    signal.setitimer(signal.ITIMER_REAL, run_timeout)
    try:
        asyncio.run(run(module, problems, out, concurrency, timeout, request_timeout))
    except RunTimeout:
        _write(out / "cut.json", json.dumps({"after": run_timeout}))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return 0


if __name__ == "__main__":
    sys.exit(
        main(
            Path(sys.argv[1]),
            Path(sys.argv[2]),
            int(sys.argv[3]),
            float(sys.argv[4]),
            float(sys.argv[5]),
            float(sys.argv[6]),
        )
    )
