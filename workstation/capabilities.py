"""Can this machine sandbox attempts? The report behind `manage.py check`, the heartbeat and booking."""

from __future__ import annotations

import os
import pwd
import site
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from workstation import layout, sandbox

CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class Report:
    problems: list[str] = field(default_factory=list)
    bwrap_ok: bool = True
    cgroups_ok: bool = True
    cgroup_version: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "problems": self.problems, "cgroup_version": self.cgroup_version}


_cached: tuple[float, Report] | None = None


def _probe_user() -> tuple[int, int]:
    """An unprivileged account to try bubblewrap as (as an attempt's user would run it)."""
    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


def unreachable_folders() -> list[str]:
    """Folders an attempt's own user must pass through but can't: the workspaces and, when shared,
    this server's Python packages. A checkout under a 0700 home folder is the usual case: every
    scorer then fails with "Permission denied". Only root switches to attempt users, so only root checks."""
    if os.geteuid() != 0:
        return []
    needed = [layout.workspace_root()]
    if settings.SANDBOX_SHARE_PYTHON_PACKAGES:
        needed += [Path(p) for p in site.getsitepackages()]
    found = []
    for path in needed:
        absolute = path.resolve()
        for folder in [*reversed(absolute.parents), absolute]:
            try:
                mode = folder.stat().st_mode
            except OSError:
                break  # not made yet: the workspaces root is created, with the right mode, on first use
            if not mode & 0o001:
                found.append(
                    f"attempt users can't enter {folder} (mode {mode & 0o777:o}) on the way to {path}: "
                    f"chmod o+x {folder}, or put the checkout and data folder somewhere they can reach"
                )
                break
    return found


def local_report(*, fresh: bool = False) -> Report:
    """This machine's answer, cached for a minute (it starts a sandbox to find out)."""
    global _cached
    if not fresh and _cached is not None and time.monotonic() - _cached[0] < CACHE_SECONDS:
        return _cached[1]
    uid, gid = _probe_user()
    found = sandbox.problems(
        bwrap=settings.SANDBOX_BWRAP,
        uid=uid,
        gid=gid,
        cgroup_version=settings.SANDBOX_CGROUP_VERSION,
        cgroup_root=settings.SANDBOX_CGROUP_ROOT,
        cgroup_parent=settings.SANDBOX_CGROUP_PARENT,
    )
    found += unreachable_folders()
    hierarchy = sandbox.cgroups.detect(settings.SANDBOX_CGROUP_VERSION, settings.SANDBOX_CGROUP_ROOT)
    report = Report(
        problems=found,
        bwrap_ok=not any("bubblewrap" in p for p in found),
        cgroups_ok=not any("cgroup" in p for p in found),
        cgroup_version=hierarchy.version if hierarchy is not None else 0,
    )
    _cached = (time.monotonic(), report)
    return report
