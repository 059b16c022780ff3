"""Test helpers for the attempt sandbox: removing the cgroups a test run left."""

from __future__ import annotations

import contextlib
import os

from workstation.sandbox import cgroups


def remove_cgroups_with_prefix(prefix: str) -> None:
    """Kill and remove every sandbox cgroup a test run left (named `<prefix>-a<id>` under the parent)."""
    from django.conf import settings

    hierarchy = cgroups.detect(settings.SANDBOX_CGROUP_VERSION, settings.SANDBOX_CGROUP_ROOT)
    if hierarchy is None or os.geteuid() != 0:
        return
    parent = settings.SANDBOX_CGROUP_PARENT
    if isinstance(hierarchy, cgroups.V1):
        roots = [os.path.join(hierarchy.mounts[c], parent) for c in hierarchy.mounts]
    else:
        assert isinstance(hierarchy, cgroups.V2)
        roots = [os.path.join(hierarchy.root, parent)]
    names = {name for root in roots if os.path.isdir(root) for name in os.listdir(root)}
    names = {name for name in names if name.startswith(f"{prefix}-")}
    for name in names:
        with contextlib.suppress(OSError, cgroups.CgroupError):
            hierarchy.remove(f"{parent}/{name}")
