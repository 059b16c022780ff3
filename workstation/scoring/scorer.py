"""A scoring run: the trusted half over a snapshot, with the harness at hand (see the package's docstring)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workstation import sandbox
from workstation.scoring.harness import HarnessServer
from workstation.scoring.instances import (
    EXCHANGE,
    HARNESS_SOCKET,
    SCORER_HOME,
    InstanceResult,
    _plain_env,
    run_instance,
)
from workstation.scoring.protected import _give, _readable_by, ensure_protected_group, protect_tree, protected_folder
from workstation.scoring.snapshot import snapshot
from workstation.users import is_root


@dataclass
class ScorerRun:
    """One scoring run of a package: what the trusted half gets, besides the snapshot and the harness."""

    job: str
    argv: list[str]  # the scorer's command, with its paths as the instance sees them
    scorer_copy: Path  # bound read-only at the same path
    workspace_files: Sequence[str]
    data_paths: list[str] = field(default_factory=list)  # read-only at the same paths (caches, datasets)
    harness_code: Path | None = None
    timeout: float = 600
    memory_bytes: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    network: str = "none"


def score(policy: sandbox.Policy, run: ScorerRun, run_dir: Path) -> tuple[InstanceResult, list[str]]:
    """The trusted half over a snapshot, with the harness at hand; returns its result and the files snapshotted."""
    if not policy.isolate:
        raise sandbox.SandboxError(
            "scorers run only inside the attempt's sandbox, and this workstation has no bubblewrap "
            "(it runs with SANDBOX_ALLOW_UNSAFE): install bubblewrap to score here"
        )
    gid = ensure_protected_group()
    # Crossable by the attempt's user (the harness mounts folders below it), listable by no one.
    protected_folder(run_dir, gid=gid, mode=0o711)
    copied = snapshot(policy, f"snapshot-{run.job}", run.workspace_files, run_dir / "workspace")
    if is_root():
        protect_tree(run_dir / "workspace")
    _give(run_dir / "exchange", policy.uid, gid if gid >= 0 else policy.gid, 0o770)
    harness_code = None
    if run.harness_code is not None:
        # A fresh copy the attempt's user can read (the scorer's copy is `protected`'s alone).
        harness_code = run_dir / "harness-code"
        shutil.copytree(run.harness_code, harness_code, symlinks=False)
        _readable_by(harness_code, policy.gid)
    server = HarnessServer(policy=policy, run_dir=run_dir, job=run.job, code=harness_code)
    trusted = dataclasses_replace(policy, workspace=str(run_dir / "workspace"), network=run.network)
    ro_binds = [(str(run.scorer_copy), str(run.scorer_copy)), (str(server.path), HARNESS_SOCKET)]
    ro_binds += [(path, path) for path in run.data_paths if path and os.path.exists(path)]
    groups = [gid] if gid >= 0 else None
    try:
        result = run_instance(
            trusted,
            f"score-{run.job}",
            run.argv,
            timeout=run.timeout,
            env={
                **_plain_env(),
                "HOME": SCORER_HOME,
                "TMPDIR": SCORER_HOME,
                **run.env,
                "REBENCH_HARNESS": HARNESS_SOCKET,
                "REBENCH_EXCHANGE": EXCHANGE,
            },
            groups=groups,
            memory_bytes=run.memory_bytes,
            ro_binds=ro_binds,
            rw_binds=[(str(run_dir / "exchange"), EXCHANGE)],
            stdin=b"",
        )
    finally:
        server.close()
    if result.sandbox_failed:
        raise sandbox.SandboxError(f"the scorer's sandbox could not start: {result.stderr.strip()[:500]}")
    return result, copied


def dataclasses_replace(policy: sandbox.Policy, **changes: Any) -> sandbox.Policy:
    import dataclasses

    return dataclasses.replace(policy, **changes)
