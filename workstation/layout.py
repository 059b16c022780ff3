"""Where an attempt's things are on a workstation: one definition of every path, from settings.

The workspace (the expert's files, bound at /home/agent in the sandbox), the sandbox's state folder
(root's: the keeper's files and sockets), the tools folder (what the sandbox and the terminal holders run: `task`,
the spawner, the holder; root's, read-only for everyone), the protected folder (scorer
copies and score logs) and the lock folder (root only).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

from django.conf import settings

HERE = Path(__file__).resolve().parent
# The tools copied into `tools_dir()`: name there → source here. Standard library only, any python3 runs them.
TOOLS = {
    "task": HERE / "tools" / "task.py",
    "rebench-termhold": HERE / "tools" / "term_holder.py",
    "spawner.py": HERE / "sandbox" / "spawner.py",
    "rebench-ssh": HERE / "tools" / "ssh_session.py",
}


def sandbox_name(attempt_id: int) -> str:
    """The attempt's name on a host: its terminals' folder, cgroup and state folder (two sites need two prefixes)."""
    return f"{settings.TERMINAL_TMUX_SOCKET_PREFIX}-a{int(attempt_id)}"


def workspace_root() -> Path:
    return Path(settings.TERMINAL_WORKSPACE_ROOT)


def workspace(attempt_id: int) -> Path:
    """The attempt's workspace (its sandbox sees it as /home/agent): its shells start there, its scorers
    read it, it outlives the attempt."""
    return workspace_root() / f"attempt-{int(attempt_id)}"


def sandbox_root() -> Path:
    return Path(settings.SANDBOX_STATE_DIR)


def sandbox_dir(attempt_id: int) -> Path:
    return sandbox_root() / sandbox_name(attempt_id)


def terminals_root() -> Path:
    return Path(settings.TERMINAL_HOLDER_DIR)


def terminals_dir(attempt_id: int) -> Path:
    """The attempt's terminal holders' sockets and pid files: the terminal user's alone."""
    return terminals_root() / sandbox_name(attempt_id)


def tools_dir() -> Path:
    return Path(settings.SANDBOX_TOOLS_DIR)


def protected_dir() -> Path:
    return Path(settings.PROTECTED_DIR)


def lock_dir() -> Path:
    """Locks shared by the web server and the worker: root's alone, so no expert can hold one."""
    path = Path(settings.DATA_DIR) / "locks"
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):
        path.chmod(0o700)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def install_tools() -> Path:
    """Copy the tools into tools_dir() (once per change): ours, readable and runnable by all, writable by none else."""
    target = tools_dir()
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o755)
    for name, source in TOOLS.items():
        destination = target / name
        if destination.is_file() and not destination.is_symlink() and _digest(destination) == _digest(source):
            continue
        temporary = target / f".{name}.{os.getpid()}"
        shutil.copyfile(source, temporary)
        temporary.chmod(0o755)
        temporary.replace(destination)
    return target
