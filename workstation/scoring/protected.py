"""The `protected` group and the folders a scoring run makes: fresh copies, folders only it (or the
attempt's user) may read."""

from __future__ import annotations

import contextlib
import grp
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from workstation.users import is_root

PROTECTED_GROUP = "protected"


def ensure_protected_group() -> int:
    """The `protected` group (no shell user is ever in it), created if missing; its gid (-1 when not root)."""
    if not is_root():
        return -1
    try:
        return grp.getgrnam(PROTECTED_GROUP).gr_gid
    except KeyError:
        with contextlib.suppress(subprocess.CalledProcessError):  # another worker made it meanwhile
            # A fixed command on the system PATH, no input of anyone's.
            subprocess.run(["groupadd", "--system", PROTECTED_GROUP], check=True, capture_output=True)  # noqa: S603, S607
        return grp.getgrnam(PROTECTED_GROUP).gr_gid


def protected_gid() -> int:
    """The group's gid, the group made first on a machine that has never scored."""
    return ensure_protected_group()


def protect_tree(path: Path, *, writable: bool = False) -> None:
    """root:protected, no access for others: the scorer user reads it, the expert's user can't."""
    if not is_root():
        return
    gid = ensure_protected_group()
    dir_mode, file_mode = (0o2770, 0o660) if writable else (0o750, 0o640)
    for root, dirs, files in os.walk(path):
        os.chown(root, 0, gid)
        os.chmod(root, dir_mode)
        for name in files:
            target = os.path.join(root, name)
            os.chown(target, 0, gid)
            os.chmod(target, file_mode)
        for name in dirs:
            os.chown(os.path.join(root, name), 0, gid)


def crossable(path: Path) -> None:
    """Let others cross (not list) the folders above `path` that we made: sandboxes mount what is below."""
    if not is_root():
        return
    for parent in path.parents:
        info = parent.stat()
        if info.st_mode & 0o001 or info.st_uid != 0:
            break
        parent.chmod(info.st_mode | 0o011)


def fresh_copy(source: Path | Callable[[Path], None], target: Path, *, protected: bool) -> Path:
    """Copy `source` (or let it fill `target`) anew, so a tampered copy from an earlier run never scores."""
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    crossable(target)
    if callable(source):
        source(target)
    else:
        shutil.copytree(source, target)
    if protected:
        protect_tree(target)
    return target


def protected_folder(path: Path, *, gid: int, mode: int = 0o750) -> Path:
    """A fresh folder root:protected (or ours when not root); what was there from an earlier run goes."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=False)
    crossable(path)
    if is_root() and gid >= 0:
        os.chown(path, 0, gid)
    path.chmod(mode)
    return path


def _give(path: Path, uid: int, gid: int, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if is_root():
        os.chown(path, uid, gid)
    path.chmod(mode)
    return path


def _readable_by(folder: Path, gid: int) -> None:
    """root:<gid>, read-only for the group (folders crossable, scripts runnable), nothing for others."""
    if not is_root():
        return
    for root, dirs, files in os.walk(folder):
        os.chown(root, 0, gid)
        os.chmod(root, 0o750)  # noqa: S103 - the attempt's group reads our harness code; others nothing
        for name in files:
            path = os.path.join(root, name)
            os.chown(path, 0, gid)
            os.chmod(path, 0o750 if os.stat(path).st_mode & 0o111 else 0o640)
        for name in dirs:
            os.chown(os.path.join(root, name), 0, gid)


def _protected_or_own_gid() -> int:
    return protected_gid() if is_root() else -1
