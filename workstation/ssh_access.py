"""Experts' SSH access to their attempts on this machine: the authorized keys files and sshd's drop-in.

The server sends an attempt's authorized keys with its control (plain lines, only while the attempt
runs and isn't paused); they are written here, root's, mode 0644, one file per attempt's user in
SSH_ACCESS_KEYS_DIR, where sshd reads them (`AuthorizedKeysFile`). The attempt's user can read its
file and change nothing: the folder and the file are root's. Each key is written with `restrict,pty`,
so even an sshd whose drop-in was edited away gives it no forwarding, agent or user rc.
"""

from __future__ import annotations

import base64
import contextlib
import re
import shlex
import struct
from pathlib import Path
from typing import Any

from django.conf import settings

from workstation import layout, users
from workstation.sandbox import write_file
from workstation.sandbox.state import _private_dir

# Key types an expert may register: what OpenSSH 9 accepts by default (no DSA, no RSA-SHA1 certs).
KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
KEY_LINE = re.compile(r"^(?P<type>[a-z0-9@.\-]+) (?P<blob>[A-Za-z0-9+/]+={0,2})(?: (?P<comment>[^\r\n\x00]*))?$")
MAX_KEY_CHARS = 16 * 1024
KEY_OPTIONS = "restrict,pty"


class PublicKeyError(ValueError):
    """A public key that can't be used; the message says why."""


def parse_public_key(text: str) -> tuple[str, str, str]:
    """(type, base64 blob, comment) of one OpenSSH public key line; PublicKeyError with the reason otherwise.

    Options before the key (`command=…`, `from=…`) are refused: only the workstation sets them.
    """
    line = text.strip()
    if not line:
        raise PublicKeyError("Paste a public key (the one line of your id_ed25519.pub, for instance).")
    if len(line) > MAX_KEY_CHARS or "\n" in line or "\r" in line:
        raise PublicKeyError("A public key is one line of at most 16 KB.")
    match = KEY_LINE.match(line)
    if match is None:
        first = line.split(" ", 1)[0]
        if first not in KEY_TYPES and "BEGIN" in line:
            raise PublicKeyError("That is a private key or another format: paste the .pub file's one line.")
        raise PublicKeyError("Not an OpenSSH public key: expected `<type> <base64 key> [comment]`, with no options.")
    kind, blob = match["type"], match["blob"]
    if kind not in KEY_TYPES:
        raise PublicKeyError(f"Key type {kind!r} is not accepted; use one of: {', '.join(sorted(KEY_TYPES))}.")
    try:
        raw = base64.b64decode(blob, validate=True)
        (length,) = struct.unpack(">I", raw[:4])
        inner = raw[4 : 4 + length].decode("ascii")
    except (ValueError, struct.error, UnicodeDecodeError):
        raise PublicKeyError("The key's base64 part is damaged.") from None
    if inner != kind:
        raise PublicKeyError(f"The key says it is {kind!r} but its data is {inner!r}.")
    if kind == "ssh-rsa" and len(raw) < 256 + 20:
        raise PublicKeyError("RSA keys shorter than 2048 bits are not accepted.")
    return kind, blob, (match["comment"] or "").strip()


def keys_dir() -> Path:
    return Path(settings.SSH_ACCESS_KEYS_DIR)


def keys_file(attempt_id: int) -> Path:
    return keys_dir() / users.attempt_user_name(attempt_id)


def _authorized_lines(keys: list[str]) -> bytes:
    lines = []
    for key in keys:
        with contextlib.suppress(PublicKeyError):  # the server validated it; a bad line is left out, never passed on
            kind, blob, _comment = parse_public_key(key)
            lines.append(f"{KEY_OPTIONS} {kind} {blob}\n")
    return "".join(lines).encode()


def apply_control(attempt_id: int, control: dict[str, Any]) -> None:
    """Write the attempt's authorized keys from the server's control, or remove them when it has none
    (paused, ended, no keys). Only as root with per-attempt users: otherwise there is no account to log in as."""
    if "ssh_keys" not in control or not users.per_attempt():
        return
    keys = control.get("ssh_keys") or []
    if control.get("ended") or not isinstance(keys, list) or not keys:
        remove(attempt_id)
        return
    data = _authorized_lines([str(key) for key in keys])
    if not data:
        remove(attempt_id)
        return
    users.attempt_user_allow_key_login(attempt_id)
    folder = keys_dir()
    _readable_folders(folder)
    write_file(str(folder), users.attempt_user_name(attempt_id), data, mode=0o644, uid=0, gid=0)


def _readable_folders(folder: Path) -> None:
    """`folder`, its parent and any ancestor made for them, root's and 0755 whatever this process's umask (a
    worker's is often 077): sshd reads the keys file as the attempt's user, and StrictModes wants every
    folder on the way root's and not writable by others. Other ancestors that were there are left alone."""
    made = [path for path in reversed(folder.parents) if not path.exists()]
    for path in dict.fromkeys([*made, folder.parent, folder]):
        _private_dir(str(path), 0o755)


def remove(attempt_id: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        keys_file(attempt_id).unlink()


def forced_command() -> str:
    """The command sshd runs for every session of an attempt's user (workstation/tools/ssh_session.py)."""
    from workstation.backends.local import system_python

    argv = [system_python(), "-I", "-S", str(layout.tools_dir() / "rebench-ssh")]
    argv += ["--state-root", str(layout.sandbox_root())]
    argv += ["--name-prefix", settings.TERMINAL_TMUX_SOCKET_PREFIX]
    argv += ["--user-prefix", settings.TERMINAL_ATTEMPT_USER_PREFIX]
    return " ".join(shlex.quote(part) for part in argv)


def sshd_config() -> str:
    """sshd's drop-in for attempts' users (`manage.py ssh_access_config` prints it), in /etc/ssh/sshd_config.d/."""
    pattern = f"{settings.TERMINAL_ATTEMPT_USER_PREFIX}*"
    return f"""# rebench_site: experts reach their attempts' sandboxes as the attempts' users.
# Made by `manage.py ssh_access_config`; install as /etc/ssh/sshd_config.d/rebench.conf.
Match User {pattern}
    AuthorizedKeysFile {keys_dir()}/%u
    AuthorizedKeysCommand none
    AuthorizedPrincipalsFile none
    PubkeyAuthentication yes
    PasswordAuthentication no
    KbdInteractiveAuthentication no
    HostbasedAuthentication no
    ForceCommand {forced_command()}
    DisableForwarding yes
    AllowAgentForwarding no
    AllowTcpForwarding no
    AllowStreamLocalForwarding no
    PermitOpen none
    PermitListen none
    GatewayPorts no
    PermitTunnel no
    X11Forwarding no
    PermitUserRC no
    PermitTTY yes
"""
