"""An attempt's workspace on its workstation: made once, filled by the attempt's own user, read without following links.

Nothing here that runs as root opens a path inside the workspace by name: the workspace folder is
opened once, from its root-owned parent, without following links, and only ever chowned as a
whole; files go in through a sandbox instance of the attempt (as its user, where a link can only
point inside the sandbox's own view); the one file the server reads (a Task Standard submission)
is opened relative to that folder, refusing links and anything but a regular file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from workstation import scoring, users
from workstation.sandbox import Policy

STAGING = "/opt/rebench/staging"
COPY_TIMEOUT_SECONDS = 1800
# Run by the attempt's user inside its sandbox: copy what isn't there yet, print what was copied.
COPY_SCRIPT = """
import json, os, shutil, sys
source, target, copied = sys.argv[1], sys.argv[2], []
for root, dirs, files in os.walk(source):
    rel = os.path.relpath(root, source)
    here = os.path.normpath(os.path.join(target, rel))
    os.makedirs(here, exist_ok=True)
    for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
        origin, destination = os.path.join(root, name), os.path.join(here, name)
        if os.path.lexists(destination):
            continue
        if os.path.islink(origin):  # kept a link (a full-scale dataset's), never copied through
            os.symlink(os.readlink(origin), destination)
        else:
            shutil.copyfile(origin, destination)
            shutil.copymode(origin, destination)
        copied.append(os.path.normpath(os.path.join(rel, name)))
print(json.dumps(sorted(copied)))
"""


def make(policy: Policy) -> Path:
    return make_folder(Path(policy.workspace), uid=policy.uid, gid=policy.gid)


def make_folder(path: Path, *, uid: int, gid: int) -> Path:
    """A workspace folder, its user's alone (0700). Its parent is ours, so the name can't be swapped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if users.is_root():
        path.parent.chmod(0o711)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        if users.is_root():
            os.fchown(fd, uid, gid)
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return path


@contextlib.contextmanager
def staging_folder(path: Path, *, gid: int) -> Iterator[Path]:
    """A fresh folder of ours for a package to fill; readable by the attempt's group, removed afterwards."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _share_with(folder: Path, gid: int) -> None:
    """root:<attempt's group>, group-readable: the attempt's user may read the staging, nobody else."""
    if not users.is_root():
        return
    for root, dirs, files in os.walk(folder):
        os.lchown(root, 0, gid)
        os.chmod(root, 0o750)  # noqa: S103 - the attempt's group reads the staging; others nothing
        for name in dirs:
            os.lchown(os.path.join(root, name), 0, gid)
        for name in files:
            path = os.path.join(root, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                os.lchown(path, 0, gid)
                os.chmod(path, 0o750 if info.st_mode & 0o111 else 0o640)
    scoring.crossable(folder)


def populate(policy: Policy, folder: Path) -> list[str]:
    """Copy `folder`'s files into the workspace as the attempt's user, in its sandbox, never over an existing file."""
    _share_with(folder, policy.gid)
    # Without bubblewrap (SANDBOX_ALLOW_UNSAFE) the same copy runs as the attempt's user on the real paths.
    source, target = (STAGING, "/home/agent") if policy.isolate else (str(folder), policy.workspace)
    result = scoring.run_instance(
        policy,
        "populate",
        [policy.python, "-c", COPY_SCRIPT, source, target],
        timeout=COPY_TIMEOUT_SECONDS,
        ro_binds=[(str(folder), STAGING)] if policy.isolate else [],
    )
    if result.returncode != 0:
        raise OSError(f"copying the starting files into the workspace failed: {result.stderr_tail(5)}")
    try:
        return list(json.loads(result.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return []


def read_text(workspace: Path, name: str, *, limit: int) -> str:
    """A plain file directly in the workspace, or "": never a link, a pipe or a device, at most `limit` bytes."""
    try:
        folder = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return ""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    except OSError:
        return ""
    finally:
        os.close(folder)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        return os.read(fd, limit).decode("utf-8", "replace")
    finally:
        os.close(fd)
