"""Runs one METR Task Standard method in a fresh process, as the standard's own driver does.

Usage: python driver.py <family_dir> <family_name> <method> '<json arguments>'
Prints the JSON answer between two markers (from $REBENCH_RESULT_MARKER) on stdout. Standalone:
it imports nothing from the site, since it runs on a workstation as the scorer's user.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import sys
import traceback
from typing import Any

MARKER = os.environ.pop("REBENCH_RESULT_MARKER", "REBENCH-RESULT")


def emit(payload: dict[str, Any]) -> None:
    print(f"\n{MARKER}{json.dumps(payload, default=str)}{MARKER}", flush=True)


class FamilyError(Exception):
    """The family breaks the standard (not a crash in a method)."""


def load(family_dir: str, name: str) -> Any:
    sys.path.insert(0, family_dir)
    module = importlib.import_module(name)
    family = getattr(module, "TaskFamily", None)
    if family is None or not inspect.isclass(family):
        raise FamilyError(f"{name}/{name}.py defines no TaskFamily class.")
    if hasattr(family, "score") and hasattr(family, "intermediate_score"):
        raise FamilyError("TaskFamily defines both score and intermediate_score; the standard allows one.")
    if hasattr(family, "intermediate_score") and not hasattr(family, "aggregate_scores"):
        raise FamilyError("TaskFamily defines intermediate_score without aggregate_scores.")
    return family


def task_of(family: Any, task_name: str) -> dict[str, Any]:
    tasks = family.get_tasks()
    if task_name not in tasks:
        raise FamilyError(f"No task {task_name!r} in this family (it has {sorted(tasks)}).")
    missing = [v for v in getattr(family, "required_environment_variables", []) if v not in os.environ]
    if missing:
        raise FamilyError(f"Required environment variables are not set: {', '.join(missing)}.")
    task: dict[str, Any] = tasks[task_name]
    return task


def as_score_result(value: Any) -> dict[str, Any]:
    """intermediate_score's dict (score, message, details) or a bare number, as the site's scorer result."""
    if isinstance(value, dict):
        message = value.get("message", "")
        return {
            "score": value.get("score"),
            "message": message if isinstance(message, str) else json.dumps(message, default=str),
            "details": value.get("details") or {},
        }
    return {"score": value, "message": ""}


def run(family_dir: str, name: str, method: str, args: dict[str, Any]) -> Any:
    family = load(family_dir, name)
    if method == "describe":
        tasks = family.get_tasks()
        return {
            "standard_version": getattr(family, "standard_version", None),
            "tasks": sorted(tasks),
            "instructions": {t: family.get_instructions(tasks[t]) for t in tasks},
            "permissions": {
                t: (family.get_permissions(tasks[t]) if hasattr(family, "get_permissions") else []) for t in tasks
            },
            "required_environment_variables": list(getattr(family, "required_environment_variables", [])),
            "scoring": "intermediate" if hasattr(family, "intermediate_score") else "score",
        }
    if method == "install":
        # Once per family version on a machine, before any task of it starts; no task, as the
        # standard's own driver calls it.
        if hasattr(family, "install"):
            family.install()
            return "installed"
        return "no install method"
    task = task_of(family, args["task_name"])
    if method == "start":
        if hasattr(family, "start"):
            family.start(task)
        return None
    if method == "intermediate_score":
        if not hasattr(family, "intermediate_score"):
            raise FamilyError("This task is scored once, at the end (TaskFamily.score).")
        return as_score_result(family.intermediate_score(task))
    if method == "final":
        # The end of an attempt: one last score, the aggregate, then teardown.
        if hasattr(family, "intermediate_score"):
            last = as_score_result(family.intermediate_score(task))
            log = [*args.get("score_log", []), {**last, "elapsed_seconds": args.get("elapsed_seconds", 0)}]
            result = {
                "score": family.aggregate_scores(task, log),
                "message": f"Aggregate of {len(log)} intermediate scores.",
                "details": {"last_intermediate": last},
            }
        else:
            submission = args.get("submission", "")
            score = family.score(task, submission)
            if score is None:
                # The standard's word for "a person scores this": the site lists it for an admin.
                result = {
                    "score": None,
                    "message": "TaskFamily.score returned None: an admin scores this attempt by hand.",
                    "details": {"manual_scoring": True, "submission": submission[:100_000]},
                }
            else:
                result = {"score": score, "message": "Scored the submission."}
        if hasattr(family, "teardown"):
            # Without arguments, as the standard's driver calls it. Scoring reads a read-only snapshot
            # of the workspace: a teardown that writes or removes files there fails, and that must
            # not cost the score it comes after.
            try:
                family.teardown()
            except Exception as exc:
                traceback.print_exc()
                result.setdefault("details", {})["teardown_error"] = f"{type(exc).__name__}: {exc}"
        return result
    raise FamilyError(f"Unknown method {method!r}.")


def main() -> int:
    family_dir, name, method = sys.argv[1:4]
    args = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    try:
        result = run(family_dir, name, method, args)
    except FamilyError as exc:
        emit({"ok": False, "error": str(exc)})
        return 2
    except Exception as exc:  # a method raised: its traceback is the message
        traceback.print_exc()
        emit({"ok": False, "error": f"{method} raised {type(exc).__name__}: {exc}"})
        return 1
    if method in ("intermediate_score", "final"):
        score = result.get("score")
        if isinstance(score, float) and not math.isfinite(score):
            result["score"] = None
        emit(result)  # the scorer protocol: score, message, details
    else:
        emit({"ok": True, "result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
