"""The web host's one door into an SSH workstation: the forced command of the site's SSH key, run as root there.

The site reaches a workstation over SSH only to do what the backend contract says (open a terminal,
attach to it, pull its recording, steer, stop and end the attempt's sandbox, move a file in or
out). Its key's line in root's authorized_keys is `command="…/rebench-gate",restrict`, so whatever
command line the site (or anyone holding its key) sends, sshd runs this instead, with that line in
`SSH_ORIGINAL_COMMAND`; this runs the one verb it names, with the local backend's own functions, on
this host's layout: the same per-attempt users, workspaces, sandboxes and holders that the
workstation's agent prepares and scores in. Nothing else is reachable through the key: no shell, no
forwarding, no PTY, no file of the host's.

    open ATTEMPT N < {sandbox, control, token, cols, rows, readonly, record}   its sandbox up, the holder started
    connect ATTEMPT N                  the holder's frames on stdin and stdout (as the terminal user)
    exists ATTEMPT N                   exit status 0 if terminal N's holder answers
    pull ATTEMPT N OFFSET              the terminal's recording from OFFSET, whole lines
    drop-recordings ATTEMPT            the terminals' recordings here, once the site holds them
    ssh-recordings ATTEMPT             the SSH sessions' recordings, as a tar of session-N.out
    control ATTEMPT < control          the site's latest pause/deadline/end and SSH keys; the merged control
    status ATTEMPT                     the sandbox's status
    end ATTEMPT                        the holders ended, the sandbox's processes stopped
    upload ATTEMPT PATH < {sandbox}\\n BYTES        a file written in the workspace, as the attempt's user
    download ATTEMPT PATH MAX < {sandbox}          {"kind": …}\\n then the file, or the folder as a tar.gz

Answers are JSON on stdout; a refusal is its reason on stderr and exit status 1 (2: a command line
no shell could split).
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

NAME = "rebench-gate"
DEFAULT_ENV_FILE = "/etc/rebench/worker.env"
MAX_REQUEST = 1024 * 1024  # a JSON request's most bytes (an upload's data comes after it)
_ENV_LINE = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"$')


class Refused(Exception):
    """The verb can't be done; the message is the site's to show."""


def read_env_file(path: str) -> dict[str, str]:
    """NAME="value" lines as the set-up script writes them (systemd's EnvironmentFile quoting)."""
    values: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            match = _ENV_LINE.match(line.strip())
            if match:
                values[match[1]] = re.sub(r"\\(.)", r"\1", match[2])
    return values


def _setup(env_file: str) -> None:
    """The agent's settings (no database, no site secret), from the worker's environment file when there is one."""
    if os.path.exists(env_file):
        for name, value in read_env_file(env_file).items():
            os.environ.setdefault(name, value)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebench_site.agent_settings")
    # Settings only, no django.setup(): the gate touches no app or model, and loading them all would
    # cost most of a second on every verb (a tab's status check runs one every few seconds).


def _whole(text: str, what: str) -> int:
    if not re.fullmatch(r"[0-9]{1,12}", text):
        raise Refused(f"{what} must be a whole number, not {text[:40]!r}")
    return int(text)


def _request(stream: BinaryIO) -> dict[str, Any]:
    line = stream.readline(MAX_REQUEST + 1)
    if len(line) > MAX_REQUEST:
        raise Refused("the request is too long")
    try:
        data = json.loads(line or b"{}")
    except ValueError as exc:
        raise Refused(f"the request is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Refused("the request must be a JSON object")
    return data


def recordings_dir(attempt_id: int) -> Path:
    """Where this host's holders record an SSH workstation's terminals until the site pulls them."""
    from workstation import layout

    return layout.terminals_root() / "recordings" / layout.sandbox_name(attempt_id)


def spool_path(attempt_id: int, number: int) -> Path:
    return recordings_dir(attempt_id) / f"terminal-{int(number)}.jsonl"


def _open(attempt_id: int, number: int, request: dict[str, Any]) -> dict[str, Any]:
    from workstation.backends import ShellSpec, local

    record = bool(request.get("record")) and not request.get("readonly")
    if record:
        local.terminal_user_folder(recordings_dir(attempt_id), local.terminal_user())
    spec = ShellSpec(
        attempt_id=attempt_id,
        number=number,
        sandbox=_sandbox_request(request, attempt_id),
        cols=int(request.get("cols", 80)),
        rows=int(request.get("rows", 24)),
        readonly=bool(request.get("readonly")),
        token=str(request.get("token", "")),
        spool_output=str(spool_path(attempt_id, number)) if record else "",
        control=dict(request.get("control") or {}),
    )
    local.terminal_prepare(spec)
    return {"ok": True}


def _connect(attempt_id: int, number: int) -> None:
    """Become the terminal user and run the holder's client on this channel: its frames, byte for byte."""
    from workstation import holder, layout
    from workstation.backends import local

    user = local.terminal_user()
    argv = holder.connect_argv(
        python=local.system_python(),
        tool=str(layout.tools_dir() / holder.TOOL),
        socket=str(local.holder_socket(attempt_id, number)),
    )
    sys.stdout.flush()
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(user.gid)
        os.setuid(user.uid)
    os.chdir("/")
    os.execve(argv[0], argv, local.holder_env())  # noqa: S606 - the holder client, our tool, argv we built


def _pull(attempt_id: int, number: int, offset: int, out: BinaryIO) -> None:
    try:
        fd = os.open(spool_path(attempt_id, number), os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return
    with os.fdopen(fd, "rb") as source:
        source.seek(offset)
        data = source.read()
    out.write(data[: data.rfind(b"\n") + 1])


def _ssh_recordings(attempt_id: int, out: BinaryIO) -> None:
    from workstation.backends import local

    with tempfile.TemporaryDirectory() as folder:
        numbers = local.collect_ssh_recordings_sync(attempt_id, lambda n: Path(folder) / f"session-{n}.out")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for number in numbers:
                archive.add(Path(folder) / f"session-{number}.out", arcname=f"session-{number}.out")
    out.write(buffer.getvalue())


def _upload_limit() -> int:
    from django.conf import settings

    return int(settings.ATTEMPT_UPLOAD_MAX_MB) * 1024 * 1024


def _sandbox_request(request: dict[str, Any], attempt_id: int) -> Any:
    """The request's sandbox for the attempt the verb names (never one the JSON names)."""
    from workstation.backends import SandboxRequest

    return SandboxRequest.from_json({**request.get("sandbox", {}), "attempt_id": attempt_id})


def run(words: list[str], stdin: BinaryIO, stdout: BinaryIO) -> int:
    """One verb; its answer on `stdout`. Refused (the reason) when it can't be done."""
    from workstation import files, sandbox
    from workstation.backends import BackendError, local

    if words and words[0] == NAME:
        words = words[1:]
    if not words:
        raise Refused(f"no verb: {NAME} takes one of open, connect, exists, pull, control, status, end, …")
    verb, args = words[0], words[1:]
    counts = {
        "open": 2,
        "connect": 2,
        "exists": 2,
        "pull": 3,
        "drop-recordings": 1,
        "ssh-recordings": 1,
        "control": 1,
        "status": 1,
        "end": 1,
        "upload": 2,
        "download": 3,
    }
    if verb not in counts:
        raise Refused(f"{verb[:40]!r} is not a verb of {NAME}")
    if len(args) != counts[verb]:
        raise Refused(f"{verb} takes {counts[verb]} arguments, not {len(args)}")
    attempt_id = _whole(args[0], "the attempt")
    answer: Any = None
    try:
        if verb == "open":
            answer = _open(attempt_id, _whole(args[1], "the terminal"), _request(stdin))
        elif verb == "connect":
            _connect(attempt_id, _whole(args[1], "the terminal"))
        elif verb == "exists":
            return 0 if local.holder_answers(attempt_id, _whole(args[1], "the terminal")) else 1
        elif verb == "pull":
            _pull(attempt_id, _whole(args[1], "the terminal"), _whole(args[2], "the offset"), stdout)
            return 0
        elif verb == "drop-recordings":
            shutil.rmtree(recordings_dir(attempt_id), ignore_errors=True)
            answer = {"ok": True}
        elif verb == "ssh-recordings":
            _ssh_recordings(attempt_id, stdout)
            return 0
        elif verb == "control":
            answer = local.sandbox_control_sync(attempt_id, _request(stdin))
        elif verb == "status":
            from workstation import layout

            answer = sandbox.status(str(layout.sandbox_dir(attempt_id)))
        elif verb == "end":
            answer = {"ended": local.end_attempt_sync(attempt_id)}
        elif verb == "upload":
            request = _sandbox_request(_request(stdin), attempt_id)
            limit = _upload_limit()
            data = stdin.read(limit + 1)
            if len(data) > limit:
                raise Refused(f"an upload is at most {limit} bytes")
            local.transfer(files.upload, request, args[1], data)
            answer = {"ok": True}
        elif verb == "download":
            request = _sandbox_request(_request(stdin), attempt_id)
            with tempfile.TemporaryDirectory() as folder:
                dest = Path(folder) / "download"
                kind = local.transfer(files.download, request, args[1], dest, max_bytes=_whole(args[2], "the limit"))
                stdout.write(json.dumps({"kind": kind}).encode() + b"\n")
                with dest.open("rb") as source:
                    shutil.copyfileobj(source, stdout)
            return 0
    except BackendError as exc:
        raise Refused(str(exc)) from None
    except (sandbox.SandboxError, OSError, ValueError, KeyError, TypeError) as exc:
        raise Refused(f"{type(exc).__name__}: {exc}") from None
    stdout.write(json.dumps(answer).encode())
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    env_file = DEFAULT_ENV_FILE
    if len(argv) >= 2 and argv[0] == "--env":
        env_file, argv = argv[1], argv[2:]
    # sshd's forced command: what the client asked for is here, never run as a command line.
    original = os.environ.get("SSH_ORIGINAL_COMMAND")
    try:
        words = shlex.split(original) if original is not None else argv
    except ValueError:
        sys.stderr.write("the command line is not one a shell would split\n")
        return 2
    _setup(env_file)
    try:
        return run(words, sys.stdin.buffer, sys.stdout.buffer)
    except Refused as exc:
        sys.stderr.write(f"{exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
