"""Test helpers for per-attempt Unix users: run a command as a user, delete a test run's users."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess

from workstation import users as unix_users


def as_user(user: str, groups: list[int], argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run `argv` as `user` with exactly `groups` as its extra groups, as a shell or scorer would be."""
    entry = pwd.getpwnam(user)

    def drop() -> None:
        os.setgroups(groups)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return subprocess.run(argv, preexec_fn=drop, capture_output=True, text=True, check=False)


def delete_users_with_prefix(prefix: str) -> list[str]:
    """Stop and delete every user named `prefix<digits>` (with home and group); [] when not root."""
    if os.geteuid() != 0 or not prefix:
        return []
    deleted = []
    for entry in pwd.getpwall():
        rest = entry.pw_name.removeprefix(prefix)
        if rest == entry.pw_name or not rest.isdigit() or entry.pw_uid == 0:
            continue
        for pid in unix_users._pids_of(entry.pw_uid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        result = subprocess.run(
            ["userdel", "--remove", "--force", entry.pw_name], capture_output=True, text=True, check=False
        )
        if result.returncode in (0, 12):  # 12: the home was already gone
            deleted.append(entry.pw_name)
    return deleted
