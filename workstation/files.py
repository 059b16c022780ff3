"""Files into and out of an attempt's workspace for its page, written and read in its sandbox as its user.

Each transfer is one sandbox instance (as a scorer's snapshot is): the attempt's user, its view of the
machine only, so a link the expert planted can only point at what the sandbox shows, and root never
writes into the workspace. The path was checked on the server (relative, no `..`); inside, every
folder on the way is opened without following links and the file is created without following one.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from workstation import sandbox
from workstation.scoring.instances import _plain_env, run_instance

TIMEOUT_SECONDS = 300

_WALK = r"""
import os, sys
def _said(kind, value, tb):
    name = getattr(value, "filename", None)
    sys.stderr.write(f"{name + ': ' if name else ''}{getattr(value, 'strerror', None) or value}\n")
    sys.exit(3)
sys.excepthook = _said
def walk(base, parts, make):
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    for part in parts:
        if make:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
        try:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            sys.stderr.write(f"{part}: {exc.strerror}\n")
            sys.exit(3)
        os.close(fd)
        fd = inner
    return fd
"""

UPLOAD = (
    _WALK
    + r"""
base, path = sys.argv[1], sys.argv[2]
parts = path.split("/")
folder = walk(base, parts[:-1], True)
try:
    out = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644, dir_fd=folder)
except OSError as exc:
    sys.stderr.write(f"{parts[-1]}: {exc.strerror}\n")
    sys.exit(3)
source = sys.stdin.buffer
while chunk := source.read(1 << 16):
    view = memoryview(chunk)
    while view:
        view = view[os.write(out, view):]
os.close(out)
"""
)

DOWNLOAD = (
    _WALK
    + r"""
import stat, tarfile
base, path, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
class Capped:
    def __init__(self, out):
        self.out, self.count = out, 0
    def write(self, data):
        self.count += len(data)
        if self.count > limit:
            sys.stderr.write("over the limit\n")
            os._exit(4)
        return self.out.write(data)
    def flush(self):
        self.out.flush()
parts = path.split("/") if path else []
out = Capped(sys.stdout.buffer)
if not parts:
    kind, fd = "D", walk(base, [], False)
else:
    folder = walk(base, parts[:-1], False)
    try:
        info = os.stat(parts[-1], dir_fd=folder, follow_symlinks=False)
    except OSError as exc:
        sys.stderr.write(f"{parts[-1]}: {exc.strerror}\n")
        sys.exit(3)
    if stat.S_ISREG(info.st_mode):
        kind, fd = "F", os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
    elif stat.S_ISDIR(info.st_mode):
        kind, fd = "D", walk(base, parts, False)
    else:
        sys.stderr.write(f"{parts[-1]}: not a file or a folder\n")
        sys.exit(3)
out.write(kind.encode())
if kind == "F":
    while chunk := os.read(fd, 1 << 16):
        out.write(chunk)
else:
    os.fchdir(fd)
    keep = lambda info: info if (info.isfile() or info.isdir()) else None
    with tarfile.open(fileobj=out, mode="w|gz") as tar:
        tar.add(".", arcname=parts[-1] if parts else "workspace", filter=keep)
out.flush()
"""
)


class TransferError(Exception):
    """The transfer was refused inside the sandbox (a link, a missing folder, over the limit): the message says why."""


def _base(policy: sandbox.Policy) -> str:
    return sandbox.HOME if policy.isolate else policy.workspace


def _relative(path: str) -> str:
    """`path` as the walk inside takes it: relative, no `..`, no empty or `.` parts (the site checks the same;
    this holds for whoever else asks, the gate's callers)."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\x00" in path:
        raise TransferError(f"{path[:100]!r} is not a path inside the workspace")
    return path


def upload(policy: sandbox.Policy, path: str, data: bytes) -> None:
    """Write `data` to `path` (relative, checked) in the workspace, as the attempt's user inside its sandbox."""
    path = _relative(path)
    result = run_instance(
        policy,
        f"upload-{secrets.token_hex(4)}",
        [policy.python, "-I", "-S", "-c", UPLOAD, _base(policy), path],
        timeout=TIMEOUT_SECONDS,
        env=_plain_env(),
        stdin=data,
    )
    if result.returncode != 0:
        raise TransferError(result.stderr_tail(3) or f"the upload failed (exit status {result.returncode})")


def download(policy: sandbox.Policy, path: str, dest: Path, *, max_bytes: int) -> str:
    """The file at `path` into `dest` ("file"), or the folder as a tar.gz ("folder"), read as the attempt's user
    inside its sandbox; TransferError past `max_bytes`."""
    path = _relative(path) if path else path
    raw = dest.with_name(f".{dest.name}.raw")
    with raw.open("wb") as out:
        result = run_instance(
            policy,
            f"download-{secrets.token_hex(4)}",
            [policy.python, "-I", "-S", "-c", DOWNLOAD, _base(policy), path, str(max_bytes)],
            timeout=TIMEOUT_SECONDS,
            env=_plain_env(),
            stdout_file=out,
        )
    try:
        if result.returncode == 4:
            raise TransferError(f"over the download limit of {max_bytes} bytes")
        if result.returncode != 0:
            raise TransferError(result.stderr_tail(3) or f"the download failed (exit status {result.returncode})")
        with raw.open("rb") as source, dest.open("wb") as target:
            kind = source.read(1)
            while chunk := source.read(1 << 20):
                target.write(chunk)
        return "file" if kind == b"F" else "folder"
    finally:
        raw.unlink(missing_ok=True)
