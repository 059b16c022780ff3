"""Can this machine sandbox attempts? The report behind `manage.py check`, the heartbeat and booking."""

from __future__ import annotations

import pwd
import time
from dataclasses import dataclass, field

from django.conf import settings

from workstation import sandbox

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
    hierarchy = sandbox.cgroups.detect(settings.SANDBOX_CGROUP_VERSION, settings.SANDBOX_CGROUP_ROOT)
    report = Report(
        problems=found,
        bwrap_ok=not any("bubblewrap" in p for p in found),
        cgroups_ok=not any("cgroup" in p for p in found),
        cgroup_version=hierarchy.version if hierarchy is not None else 0,
    )
    _cached = (time.monotonic(), report)
    return report
