"""Running scorers on the workstation: the trusted half in a scoring instance of the attempt's sandbox,
the expert's code in harness instances of it, and every file of the expert's through a snapshot.

A scoring run (`score`) goes like this:

1. **Snapshot.** The files the package names (`workspace_files`) are read from the workspace by an
   instance running as the attempt's user (so a symlink can only point inside the sandbox's own
   view), streamed out as a tar and unpacked here keeping regular files only. The trusted half sees
   that snapshot at /home/agent, never the live workspace.
2. **Trusted half.** The package's scorer runs in an instance as the attempt's user with the group
   `protected`, its fresh scorer copy and the environment's data read-only, and no network unless the
   package needs an endpoint (`scorer_network: host`). No expert code runs there.
3. **Harness.** When the scorer must run the expert's code (a kernel, a training script, a
   scaffold), it asks for it on /run/rebench/harness.sock: each request runs in its own instance of
   the attempt's sandbox, as the attempt's user without `protected`, with the live workspace, the
   scorer's inputs read-only, and no network but the bridges it asks for (the scorer's own proxy).
   What the harness writes to /run/rebench/out comes back as regular files only.

Each instance is a cgroup under the attempt's (`score-<job>`, `harness-<job>-<n>`): killed whole on
a timeout, its out-of-memory kills counted. Start scripts, which run only our code on our files,
still run as plain processes (`run`).

The code, by subject: processes.py (`run`, and the capped output every run keeps), outcome.py (the
scorer's result read into an `Outcome`), protected.py (the `protected` group, fresh copies and the
folders a run makes), instances.py (`run_instance`), snapshot.py (step 1), harness.py (step 3) and
scorer.py (`score`: step 2, with the others at hand). This package re-exports each name
(`from workstation import scoring`; `scoring.score`, `scoring.Outcome`, …).
"""

from __future__ import annotations

from workstation.scoring.harness import HarnessServer
from workstation.scoring.instances import (
    EXCHANGE,
    HARNESS_CODE,
    HARNESS_IN,
    HARNESS_OUT,
    HARNESS_SOCKET,
    REQUEST_MAX_BYTES,
    SCORER_HOME,
    SNAPSHOT_MAX_BYTES,
    InstanceResult,
    run_instance,
)
from workstation.scoring.outcome import (
    ATTEMPT_SPEND_ENV,
    OOM_SIGNS,
    RESULT_MARKER_ENV,
    Outcome,
    new_marker,
    outcome_from,
)
from workstation.scoring.processes import (
    HEAD_BYTES,
    PR_SET_PDEATHSIG,
    STDERR_LINES,
    TAIL_BYTES,
    RunResult,
    run,
)
from workstation.scoring.protected import (
    PROTECTED_GROUP,
    crossable,
    ensure_protected_group,
    fresh_copy,
    protect_tree,
    protected_folder,
    protected_gid,
)
from workstation.scoring.scorer import (
    ScorerRun,
    dataclasses_replace,
    score,
)
from workstation.scoring.snapshot import snapshot, unpack_regular_files

__all__ = [
    "ATTEMPT_SPEND_ENV",
    "EXCHANGE",
    "HARNESS_CODE",
    "HARNESS_IN",
    "HARNESS_OUT",
    "HARNESS_SOCKET",
    "HEAD_BYTES",
    "OOM_SIGNS",
    "PROTECTED_GROUP",
    "PR_SET_PDEATHSIG",
    "REQUEST_MAX_BYTES",
    "RESULT_MARKER_ENV",
    "SCORER_HOME",
    "SNAPSHOT_MAX_BYTES",
    "STDERR_LINES",
    "TAIL_BYTES",
    "HarnessServer",
    "InstanceResult",
    "Outcome",
    "RunResult",
    "ScorerRun",
    "crossable",
    "dataclasses_replace",
    "ensure_protected_group",
    "fresh_copy",
    "new_marker",
    "outcome_from",
    "protect_tree",
    "protected_folder",
    "protected_gid",
    "run",
    "run_instance",
    "score",
    "snapshot",
    "unpack_regular_files",
]
