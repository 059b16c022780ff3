"""The snapshot: the files a package names, read from the live workspace as the attempt's user and
unpacked here as regular files only."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from workstation import sandbox
from workstation.scoring.instances import SNAPSHOT_MAX_BYTES, _plain_env, run_instance


def unpack_regular_files(archive: Path, target: Path, *, max_bytes: int = SNAPSHOT_MAX_BYTES) -> list[str]:
    """Unpack a tar made by an instance: regular files and folders only, inside `target`, nothing else.

    Links, devices, absolute or climbing names are dropped: what the expert wrote can only become
    plain bytes here.
    """
    import tarfile

    kept, total = [], 0
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        for member in tar:
            name = os.path.normpath(member.name)
            if name.startswith(("/", "..")) or name == "." or not (member.isfile() or member.isdir()):
                continue
            total += member.size
            if total > max_bytes:
                raise ValueError(f"the files to score exceed {max_bytes} bytes")
            member.name = name
            tar.extract(member, target, filter="data")
            if member.isfile():
                kept.append(name)
    return kept


def snapshot(
    policy: sandbox.Policy, name: str, files: Sequence[str], target: Path, *, timeout: float = 600
) -> list[str]:
    """Copy `files` (relative to the workspace) out of the live workspace as the attempt's user; see the module doc."""
    target.mkdir(parents=True, exist_ok=True)
    if not files:
        return []
    script = (
        "import os, sys, tarfile\n"
        "t = tarfile.open(fileobj=sys.stdout.buffer, mode='w|', dereference=True)\n"
        "seen = set()\n"
        "def add(p):\n"
        "    if os.path.isdir(p):\n"
        "        real = os.path.realpath(p)\n"
        "        if real in seen: return\n"  # a link back up the tree: once is enough
        "        seen.add(real)\n"
        "    try:\n"
        "        t.add(p, recursive=False, filter=lambda i: i if (i.isfile() or i.isdir()) else None)\n"
        "    except OSError as e:\n"  # unreadable, a link to what its user can't read, a pipe: left out
        "        print('skipped', p, e.strerror, file=sys.stderr)\n"
        "        return\n"
        "    if os.path.isdir(p):\n"
        "        for n in sorted(os.listdir(p)): add(os.path.join(p, n))\n"
        "for n in sys.argv[1:]:\n"
        "    p = os.path.normpath(n)\n"
        "    if p.startswith(('/', '..')) or not os.path.exists(p): continue\n"
        "    add(p)\n"
        "t.close()\n"
    )
    archive = target.parent / f".{target.name}.tar"
    with archive.open("wb") as out:
        result = run_instance(
            policy, name, [policy.python, "-c", script, *files], timeout=timeout, stdout_file=out, env=_plain_env()
        )
    try:
        if result.returncode != 0:
            raise ValueError(f"reading the workspace failed: {result.stderr_tail(5)}")
        return unpack_regular_files(archive, target)
    finally:
        archive.unlink(missing_ok=True)
