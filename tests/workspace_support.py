"""Test helper: files a test puts in a workspace belong to the workspace's owner, as the expert's own would."""

from __future__ import annotations

import os
from pathlib import Path


def give_to_owner(workspace: Path) -> None:
    """Hand everything in `workspace` to its owner (the attempt's user when we are root)."""
    if os.geteuid() != 0:
        return
    owner = workspace.stat()
    for root, dirs, files in os.walk(workspace):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), owner.st_uid, owner.st_gid)


def put(workspace: Path, name: str, data: str | bytes) -> Path:
    """Write `workspace/name` as the expert would: theirs, readable by them."""
    path = workspace / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    give_to_owner(workspace)
    return path
