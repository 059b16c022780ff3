"""Unix users on a workstation: one per attempt when we are root, so attempts can't read each other; the terminal's."""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

# Groups that would give an attempt's user more than its own files: refused if an existing
# account of that name is in any of them (someone added it by hand, or the name was taken).
PRIVILEGED_GROUPS = frozenset(
    {"root", "sudo", "wheel", "adm", "admin", "docker", "disk", "shadow", "staff", "protected"}
)
# useradd takes /etc/passwd's lock and fails at once when another useradd holds it; the web server
# and the workstation's Celery worker may both create the same user when an attempt starts.
CREATE_RETRY_SECONDS = 10.0
# Our own lock around useradd lives in a root-only folder (no expert can take it) and is never
# waited on for longer than this.
LOCK_SECONDS = 20.0


class UnixUserError(Exception):
    """An attempt's user can't be made or isn't safe to use; the message says what to fix."""


@dataclass(frozen=True)
class ShellUser:
    name: str
    uid: int
    gid: int
    home: str


def _from_entry(entry: pwd.struct_passwd) -> ShellUser:
    return ShellUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def is_root() -> bool:
    return os.geteuid() == 0


def per_attempt() -> bool:
    """True when each attempt gets its own user: we are root and TERMINAL_ATTEMPT_USERS is on."""
    return is_root() and bool(getattr(settings, "TERMINAL_ATTEMPT_USERS", True))


def attempt_user_name(attempt_id: int) -> str:
    return f"{settings.TERMINAL_ATTEMPT_USER_PREFIX}{int(attempt_id)}"


def _program(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


@contextlib.contextmanager
def _accounts_lock() -> Iterator[None]:
    from workstation.layout import lock_dir
    from workstation.sandbox import locked

    try:
        with locked(str(lock_dir() / "unix-users.lock"), timeout=LOCK_SECONDS):
            yield
    except TimeoutError:
        raise UnixUserError(f"Another process held the accounts lock for {LOCK_SECONDS:g} s.") from None


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603 - fixed programs


def _create(name: str, argv: list[str]) -> pwd.struct_passwd:
    """Run `argv` (a useradd) unless `name` exists; retried while another process holds the passwd lock."""
    deadline = time.monotonic() + CREATE_RETRY_SECONDS
    while True:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
        with _accounts_lock():
            with contextlib.suppress(KeyError):
                return pwd.getpwnam(name)
            result = _run(argv)
        if result.returncode == 0:
            return pwd.getpwnam(name)
        if time.monotonic() > deadline:
            raise UnixUserError(f"Creating the user {name!r} failed: {result.stderr.strip()}")
        time.sleep(0.2)


def _modify(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run `argv` (a usermod) under our accounts lock, retried while another process holds the passwd
    lock (a useradd of a test run or of the host's own), on which usermod fails at once, as useradd does."""
    deadline = time.monotonic() + CREATE_RETRY_SECONDS
    while True:
        with _accounts_lock():
            result = _run(argv)
        if result.returncode == 0 or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def _check_unprivileged(entry: pwd.struct_passwd) -> None:
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise UnixUserError(f"The user {entry.pw_name!r} is root or in root's group; shells never run as root.")
    names = set()
    for gid in os.getgrouplist(entry.pw_name, entry.pw_gid):
        with contextlib.suppress(KeyError):
            names.add(grp.getgrgid(gid).gr_name)
    bad = sorted(names & PRIVILEGED_GROUPS)
    if bad:
        raise UnixUserError(
            f"The user {entry.pw_name!r} is in {', '.join(bad)}; an attempt's user must be in no such group."
        )


def current_user() -> ShellUser:
    return _from_entry(pwd.getpwuid(os.geteuid()))


def shared_user(*, create: bool = True) -> ShellUser:
    """TERMINAL_LOCAL_USER, created if missing: the one user of every attempt when per-attempt users are off."""
    if not is_root():
        return current_user()
    name = settings.TERMINAL_LOCAL_USER
    if not create:
        try:
            return _from_entry(pwd.getpwnam(name))
        except KeyError:
            raise UnixUserError(f"The user {name!r} does not exist on this machine.") from None
    entry = _create(name, [_program("useradd"), "--system", "--create-home", "--shell", "/bin/bash", name])
    if entry.pw_uid == 0:
        raise UnixUserError(f"TERMINAL_LOCAL_USER={name!r} is root; local shells never run as root.")
    return _from_entry(entry)


def tmux_user(*, create: bool = True) -> ShellUser:
    """TERMINAL_TMUX_USER, who runs every terminal's holder (its PTY and its recording, outside the sandboxes).

    Not an attempt's user: an expert can't signal, trace or connect to their terminal's holder, so
    what it records is out of their reach. Not root either: a holder reads whatever the shell prints. Not
    root: this process's own user.
    """
    if not is_root():
        return current_user()
    name = settings.TERMINAL_TMUX_USER
    if not create:
        try:
            return _from_entry(pwd.getpwnam(name))
        except KeyError:
            raise UnixUserError(f"The user {name!r} does not exist on this machine.") from None
    entry = _create(
        name,
        [_program("useradd"), "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
    )
    _check_unprivileged(entry)
    return _from_entry(entry)


def _expired(name: str) -> bool:
    """Whether the account carries an expiry date (set by attempt_user_retire); /etc/shadow is root's to read."""
    with contextlib.suppress(OSError), open("/etc/shadow") as shadow:
        for line in shadow:
            fields = line.rstrip("\n").split(":")
            if fields[0] == name and len(fields) > 7:
                return fields[7] != ""
    return False


def attempt_user(attempt_id: int, *, create: bool = True, reopen: bool = False) -> ShellUser:
    """The user that attempt `attempt_id`'s shells and scorers run as on this machine.

    Not root: this process's own user (there is nobody else to be). Root with per-attempt users
    off: TERMINAL_LOCAL_USER. Otherwise `rb-a<id>`: its own group and home (mode 0700), a login
    shell, in no other group — never `protected`, never root.
    `reopen` clears the expiry a retired account carries (a site whose attempt ids restarted).
    """
    if not is_root():
        return current_user()
    if not per_attempt():
        return shared_user()
    name = attempt_user_name(attempt_id)
    if not create:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise UnixUserError(f"The attempt's user {name!r} does not exist on this machine.") from None
    else:
        entry = _create(
            name,
            [
                _program("useradd"),
                "--user-group",
                "--create-home",
                "--shell",
                "/bin/bash",
                "--comment",
                f"rebench attempt {int(attempt_id)}",
                name,
            ],
        )
    _check_unprivileged(entry)
    home = Path(entry.pw_dir)
    if create and home.is_dir() and home.stat().st_mode & 0o077:
        # useradd's home follows the system's UMASK (022 on Debian): other attempts could read it.
        os.chmod(home, 0o700)
    if reopen and _expired(name):
        result = _modify([_program("usermod"), "--expiredate", "", name])
        if result.returncode != 0:
            raise UnixUserError(f"Could not reopen the user {name!r}: {result.stderr.strip()}")
    return _from_entry(entry)


def _pids_of(uid: int) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if entry.stat().st_uid == uid:
                pids.append(int(entry.name))
    return pids


def attempt_user_retire(attempt_id: int) -> bool:
    """After the attempt has ended and its final score is in: stop the user's processes, expire the account.

    The account and its files are kept, not deleted: the workspace stays for review and re-scoring
    (a re-run scorer switches to the uid directly, which an expired account does not stop), and a
    deleted user's uid could be handed to someone else along with the files it owns. Expiry stops
    what PAM guards (su, cron, at, sshd); killing the processes stops what was left running
    (`nohup`, a setsid'd trainer). True if there was such an account to retire.
    """
    if not per_attempt():
        return False
    name = attempt_user_name(attempt_id)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return False
    if entry.pw_uid == 0:
        return False
    result = _modify([_program("usermod"), "--expiredate", "1", name])
    if result.returncode != 0:
        log.warning("attempt %s: could not expire %r: %s", attempt_id, name, result.stderr.strip())
    for _ in range(3):  # a process may fork while we kill; a few passes catch its children
        pids = _pids_of(entry.pw_uid)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    log.info("attempt %s: retired its user %r", attempt_id, name)
    return True


def _password_field(name: str) -> str:
    with contextlib.suppress(OSError), open("/etc/shadow") as shadow:
        for line in shadow:
            parts = line.split(":")
            if parts[0] == name and len(parts) > 1:
                return parts[1]
    return ""


def attempt_user_allow_key_login(attempt_id: int) -> None:
    """Let sshd take a key for the attempt's user: its password field `*` (no password matches it) instead of
    useradd's `!`, which sshd reads as a locked account. Passwords stay impossible; an expired account
    (a retired attempt) stays refused."""
    name = attempt_user_name(attempt_id)
    if not per_attempt() or not _password_field(name).startswith("!"):
        return
    result = _modify([_program("usermod"), "--password", "*", name])
    if result.returncode != 0:
        raise UnixUserError(f"Could not open {name!r} to SSH keys: {result.stderr.strip()}")
