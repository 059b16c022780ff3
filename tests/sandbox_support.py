"""Test helpers for the attempt sandbox: cgroup subtrees delegated to an unprivileged user, and their removal."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from workstation.sandbox import cgroups
from workstation.users import ShellUser


@contextlib.contextmanager
def delegated_cgroup(user: ShellUser) -> Iterator[str]:
    """`rebench-ssh-<pid>` in every hierarchy, owned by `user`: what `SANDBOX_SSH_CGROUP_PARENT` names on a host."""
    name = f"rebench-ssh-{os.getpid()}"
    hierarchy = cgroups.detect()
    if hierarchy is None or os.geteuid() != 0:
        yield name
        return
    hierarchy.create(name)
    if isinstance(hierarchy, cgroups.V1):
        directories = [os.path.join(hierarchy.mounts[c], name) for c in hierarchy.mounts]
    else:
        assert isinstance(hierarchy, cgroups.V2)
        directories = [os.path.join(hierarchy.root, name)]
    for directory in directories:
        for root, _dirs, files in os.walk(directory):
            os.chown(root, user.uid, user.gid)
            for file in files:
                with contextlib.suppress(OSError):
                    os.chown(os.path.join(root, file), user.uid, user.gid)
    try:
        yield name
    finally:
        with contextlib.suppress(OSError, cgroups.CgroupError):
            hierarchy.remove(name)


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
