"""What the attacks on the scorers that run expert code share (test_scorers_run_triton_solutions_in_the_sandbox,
test_scorers_run_mlm_models_in_the_sandbox): one scoring run as the worker does it, the attempt's live workspace,
what the hostile code reported there, and PROBE, the search for the scorer's secrets that the hostile code runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graders import services
from graders.models import ScoringJob
from trials.models import Attempt
from workstation import layout, scoring


def score(attempt: Attempt) -> scoring.Outcome:
    """One scoring run of the attempt, as the worker does it."""
    job = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test")
    outcome, _status = services.scoring_job_execute(job=job)
    return outcome


def prepared(attempt: Attempt) -> Path:
    services.workspace_prepare(attempt=attempt)
    return layout.workspace(attempt.pk)


def report(workspace: Path, name: str) -> dict[str, Any] | None:
    """What the hostile code wrote into the live workspace (None: it never ran there)."""
    path = workspace / name
    return json.loads(path.read_text()) if path.is_file() else None


# What a solution or a model can try from inside the process that runs it: every folder a scorer's
# code or configuration could be in (its own __main__'s, the protected folder, the paths in any
# process's command line), the score logs, and the result marker in any process's environment.
PROBE = r'''
import glob, json, os, sys

SKIP = ("/proc", "/sys", "/dev", "/usr", "/etc", "/home/agent", "/opt/rebench/python", "/run/rebench/in",
        "/run/rebench/out")


def _read(path, limit=20000):
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def probe(known):
    """{"read": {path: text}, "markers": [...], "secrets": [paths whose text holds a secret]}."""
    paths = set()
    main_file = getattr(sys.modules.get("__main__"), "__file__", "") or ""
    if main_file:
        folder = os.path.dirname(os.path.abspath(main_file))
        paths.update(glob.glob(os.path.join(folder, "*.py")))
        paths.add(os.path.join(folder, "configuration.json"))
    protected = known["protected"]
    for pattern in ("scorers/*/*.py", "scorers/*/configuration.json", "logs/*.csv", "runs/*/*/*"):
        paths.update(glob.glob(os.path.join(protected, pattern)))
    paths.update(known.get("paths", []))
    markers = []
    for proc in glob.glob("/proc/[0-9]*"):
        cmdline = _read(proc + "/cmdline") or ""
        for argument in cmdline.split("\0"):
            if argument.startswith("/") and argument.endswith(".py"):
                paths.add(argument)
                paths.add(os.path.join(os.path.dirname(argument), "configuration.json"))
        for entry in (_read(proc + "/environ") or "").split("\0"):
            if entry.startswith("REBENCH_RESULT_MARKER="):
                markers.append(entry.split("=", 1)[1])
    # And everything readable outside the expert's own files and the system's.
    seen = 0
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if not os.path.join(root, d).startswith(SKIP)]
        for name in files:
            seen += 1
            if seen > 20000:
                break
            if name.endswith((".py", ".json", ".csv", ".bin")):
                paths.add(os.path.join(root, name))
    read = {}
    for path in sorted(paths):
        if path.endswith(".bin"):
            if os.access(path, os.R_OK):
                read[path] = "<binary>"
            continue
        text = _read(path)
        if text is not None:
            read[path] = text
    secrets = sorted(p for p, t in read.items() if any(s in t for s in known["secrets"]) or p.endswith(".bin"))
    return {"read": {p: t[:300] for p, t in read.items()}, "markers": markers, "secrets": secrets}


def save(name, data):
    """Into the expert's workspace (the harness runs there; the old trusted half had a read-only snapshot)."""
    try:
        with open(os.path.join("/home/agent", name), "w") as out:
            json.dump(data, out, default=str)
    except OSError as exc:
        print("could not save", name, exc, file=sys.stderr)
'''
