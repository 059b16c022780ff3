"""The workstation's halves of the site's jobs, from plain specs: prepare a workspace, score, retire a user.

A spec is what the site sends (graders.services.agent builds it): JSON-able values only. Nothing
here reads the database; what only the database knows (the score log so far, the time worked, a
Task Standard task's registration) comes in the spec.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

from environments import packages
from workstation import layout, scoring, users, workspaces
from workstation import policy as workstation_policy
from workstation import sandbox as workstation_sandbox
from workstation.backends import SandboxRequest

log = logging.getLogger(__name__)

DONE = "done"
FAILED = "failed"


def policy(sandbox: dict[str, Any]) -> workstation_sandbox.Policy:
    """The attempt's sandbox on this machine, its tools in place."""
    layout.install_tools()
    return workstation_policy.local_policy(SandboxRequest.from_json(sandbox))


def package(spec: dict[str, Any]) -> packages.EnvironmentPackage | None:
    """The environment's package on this disk: a folder by its slug, or the registered Task Standard task."""
    task = spec.get("task_standard")
    if task:
        from environments import task_standard

        return task_standard.package_from(spec["slug"], task)
    return packages.find_on_disk(spec["slug"])


def prepare(spec: dict[str, Any]) -> list[str]:
    """Set up the attempt's workspace once: the starting solution (or TaskFamily.start) copied in.

    The package fills a staging folder of ours (its start script runs there, never in the
    workspace, where the expert may already be); the staging is then copied in by the attempt's
    own user inside its sandbox, never over a file that exists. The "prepared" mark lives beside
    the workspace, root's, so the expert can't make us redo it.
    """
    attempt_id = int(spec["attempt_id"])
    workspace = layout.workspace(attempt_id)
    mark = workspace.parent / f".{workspace.name}.prepared"
    if mark.exists():
        return []
    found = package(spec)
    attempt_policy = policy(spec["sandbox"])
    workspaces.make(attempt_policy)
    copied: list[str] = []
    if found is not None:
        staging = layout.protected_dir() / "staging" / f"attempt-{attempt_id}"
        with workspaces.staging_folder(staging, gid=attempt_policy.gid) as folder:
            found.prepare_staging(folder)
            copied = workspaces.populate(attempt_policy, folder)
    mark.touch()
    return copied


def retire(attempt_id: int) -> bool:
    """Stop what an ended attempt left running, drop its sandbox, expire its user (workspace and account stay)."""
    workstation_sandbox.stop(str(layout.sandbox_dir(attempt_id)), remove=True)
    return users.attempt_user_retire(attempt_id)


def score(spec: dict[str, Any]) -> tuple[scoring.Outcome, str]:
    """Run the scorer in the attempt's sandbox. Never raises: any fault is a NaN outcome with a reason."""
    try:
        return _score(spec), DONE
    except Exception as exc:  # the worker must survive whatever the environment does
        log.exception("scoring job %s failed", spec.get("job_id"))
        return scoring.Outcome(None, f"Scoring failed on the server: {exc}", {"error": type(exc).__name__}), FAILED


def final_context(spec: dict[str, Any]) -> dict[str, Any]:
    """What an end-of-attempt run of a Task Standard family needs: the log so far (the site's) and the submission."""
    final = spec.get("final")
    if final is None:
        return {}
    workspace = layout.workspace(int(spec["attempt_id"]))
    return {
        "score_log": final["score_log"],
        "elapsed_seconds": final["elapsed_seconds"],
        # Never followed if it is a link, never waited on if it is a pipe: a regular file or nothing.
        "submission": workspaces.read_text(workspace, "submission.txt", limit=100_000),
    }


def _scorer_env(
    marker: str, passthrough: list[str] | None = None, attempt_spend: dict[str, Any] | None = None
) -> dict[str, str]:
    env = {
        "LANG": "C.UTF-8",
        "TRITON_CACHE_DIR": f"{scoring.SCORER_HOME}/triton",
        scoring.RESULT_MARKER_ENV: marker,
        # What the attempt's earlier runs spent of its model budget (graders.selectors.attempt_model_spend):
        # a scorer that spends on the expert's behalf is given the rest.
        scoring.ATTEMPT_SPEND_ENV: json.dumps(attempt_spend or {"tokens": 0, "cost": 0.0}),
    }
    for name in ("TRITON_INTERPRET", *(passthrough or [])):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _score(spec: dict[str, Any]) -> scoring.Outcome:
    job_id, attempt_id, final = str(spec["job_id"]), int(spec["attempt_id"]), spec.get("final") is not None
    found = package(spec)
    if found is None:
        return scoring.Outcome(None, f"No scorer packaged for {spec['slug']}.")
    prepare(spec)  # a no-op once done
    if final:
        # The final score is taken from the state the attempt ended in: nothing it left running
        # may change the workspace from here on.
        workstation_sandbox.stop(str(layout.sandbox_dir(attempt_id)))
    attempt_policy = policy(spec["sandbox"])
    protected = layout.protected_dir()
    protected.mkdir(parents=True, exist_ok=True)
    os.chmod(protected, 0o711)  # noqa: S103 - only the folders in it are protected; it may be crossed
    copy = protected / "scorers" / job_id
    scoring.fresh_copy(found.populate, copy, protected=True)
    marker = scoring.new_marker()
    timeout = found.score_timeout_seconds
    run = scoring.ScorerRun(
        job=job_id,
        argv=found.scorer_argv(
            attempt_policy.python, copy, Path(workstation_sandbox.HOME), final=final, context=final_context(spec)
        ),
        scorer_copy=copy,
        workspace_files=found.workspace_files,
        data_paths=found.data_paths(),
        harness_code=found.root / found.harness_folder if found.harness_folder else None,
        timeout=timeout,
        memory_bytes=int(found.memory_limit_gb * 1024**3) if found.memory_limit_gb else None,
        env=_scorer_env(marker, found.required_environment_variables, spec.get("attempt_spend")),
        network=found.scorer_network,
    )
    digest = found.scorer_digest()
    try:
        result, _copied = scoring.score(attempt_policy, run, protected / "runs" / job_id)
        outcome = scoring.outcome_from(result, marker, timeout=timeout)
        if result.out_of_memory and outcome.score is None:
            outcome = scoring.Outcome(None, "The scorer ran out of memory.", {**outcome.details, "out_of_memory": True})
        outcome.details.setdefault("duration_seconds", round(result.duration, 3))
        if result.dropped_bytes:
            outcome.details["output_cut_bytes"] = result.dropped_bytes
        outcome.scorer_digest = digest
        return outcome
    finally:
        shutil.rmtree(protected / "runs" / job_id, ignore_errors=True)
        shutil.rmtree(copy, ignore_errors=True)


def jsonable(value: Any) -> Any:
    """NaN and infinities are not JSON; the log keeps them as strings, and anything odd as its str()."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
