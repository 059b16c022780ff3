"""One more instance of the attempt's sandbox, in its own cgroup: scorers' harnesses, copies into the workspace."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import cgroups
from .bwrap import bwrap_argv, hierarchy_for, preexec
from .policy import Policy

# --- one more instance of the sandbox: scorers' harnesses, copies into the workspace -----------------


@dataclass
class Instance:
    """A command running in a fresh sandbox of the attempt's policy, in the cgroup `<attempt>/<name>`."""

    policy: Policy
    name: str
    process: subprocess.Popen[bytes]
    hierarchy: cgroups.Hierarchy | None

    def kill(self) -> None:
        """The whole instance: everything it started, however it detached."""
        if self.hierarchy is not None:
            self.hierarchy.kill(self.policy.cgroup(self.name))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def oom_killed(self) -> bool:
        return self.hierarchy is not None and self.hierarchy.oom_kills(self.policy.cgroup(self.name)) > 0

    def close(self) -> None:
        self.kill()
        self.process.wait()
        if self.hierarchy is not None:
            with contextlib.suppress(OSError, cgroups.CgroupError):
                self.hierarchy.remove(self.policy.cgroup(self.name))


def prepare_cgroup(hierarchy: cgroups.Hierarchy, policy: Policy) -> None:
    """The attempt's cgroup with its caps, under a parent that weighs as much as the host's cores."""
    hierarchy.create(policy.cgroup(), policy.limits())
    hierarchy.weigh(policy.cgroup_parent, os.cpu_count() or 1)


def launch(
    policy: Policy,
    name: str,
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    groups: list[int] | None = None,
    memory_bytes: int | None = None,
    workspace_readonly: bool = False,
    ro_binds: Sequence[tuple[str, str]] = (),
    rw_binds: Sequence[tuple[str, str]] = (),
    **popen: Any,
) -> Instance:
    """Start `command` in a new sandbox instance; the caller reads its pipes and closes it."""
    hierarchy = hierarchy_for(policy)
    cgroup = policy.cgroup(name) if hierarchy is not None else None
    if hierarchy is not None and cgroup is not None:
        prepare_cgroup(hierarchy, policy)
        hierarchy.create(cgroup, cgroups.Limits(memory_bytes=memory_bytes) if memory_bytes else None)
        if hierarchy.is_frozen(cgroup):
            hierarchy.set_frozen(cgroup, False)
    if policy.isolate:
        argv = bwrap_argv(policy, command, workspace_readonly=workspace_readonly, ro_binds=ro_binds, rw_binds=rw_binds)
    else:
        argv = command
    process = subprocess.Popen(  # noqa: S603 - bubblewrap with the argv built above
        argv,
        env={**policy.environment(), **(env or {})},
        cwd=policy.workspace if not policy.isolate else "/",
        preexec_fn=preexec(policy, cgroup, groups),
        close_fds=True,
        **popen,
    )
    return Instance(policy, name, process, hierarchy)
