"""SSH into an attempt: a real OpenSSH sshd with the project's drop-in, the expert's key, the attempt's sandbox.

Every session lands in the attempt's sandbox (the same view as the browser terminal), interactive
ones are recorded like a tab, and from inside a session the expert can't add a key, forward a port
to the server's PostgreSQL or Redis, or get a command run outside the sandbox.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from tests import ssh_access_support as support
from tests.hostile.conftest import ROOT_ONLY
from tests.hostile.shell import ANSI, close, open_shell, run
from tests.trials import terminal_support as ts
from trials import recording as recording_module
from trials import selectors, services
from trials.models import Attempt, Pause, TerminalSession
from trials.services import terminals
from workstation import layout, ssh_access, users
from workstation.backends.local import end_attempt_sync, sandbox_control_sync, sandbox_up
from workstation.sandbox import ssh_gate

pytestmark = [ROOT_ONLY, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


@pytest.fixture
def keys_dir(settings: object) -> Iterator[Path]:
    with support.keys_folder(settings) as folder:
        yield folder


@pytest.fixture
def server(term_dirs: Path, keys_dir: Path) -> Iterator[support.SSHServer]:
    with support.sshd(term_dirs / "sshd") as found:
        yield found


@pytest.fixture
def key(term_dirs: Path) -> tuple[Path, str]:
    folder = term_dirs / "client"
    folder.mkdir(exist_ok=True)
    return support.make_key(folder, "expert")


def expert(attempt: Attempt) -> User:
    assert attempt.user is not None
    return attempt.user


def open_access(attempt: Attempt, public_key: str | None = None) -> str:
    """Register the key on the expert's account and bring the attempt's sandbox up with its control; its login."""
    if public_key is not None:
        services.ssh_key_add(user=expert(attempt), public_key=public_key, name="laptop")
    sandbox_up(selectors.attempt_sandbox_request(attempt), selectors.attempt_sandbox_control(attempt.pk))
    return users.attempt_user_name(attempt.pk)


def resend_control(attempt: Attempt) -> None:
    sandbox_control_sync(attempt.pk, selectors.attempt_sandbox_control(attempt.pk))


def test_the_experts_key_opens_a_command_session_in_the_attempts_sandbox(
    attempt: Attempt, another_attempt: Attempt, server: support.SSHServer, key: tuple[Path, str]
) -> None:
    login = open_access(attempt, key[1])
    open_access(another_attempt)
    (layout.workspace(another_attempt.pk) / "theirs.txt").write_text("their-secret-work")
    keys_file = ssh_access.keys_file(attempt.pk)
    info = keys_file.stat()
    assert (info.st_uid, info.st_mode & 0o777) == (0, 0o644)
    assert keys_file.read_text().startswith("restrict,pty ssh-ed25519 ")

    result = server.ssh(
        login,
        key[0],
        "echo user=$(id -un) home=$HOME pwd=$(pwd) attempt=$REBENCH_ATTEMPT_ID; echo from-ssh > made-over-ssh.txt;"
        f" ls {layout.workspace(another_attempt.pk)} {layout.sandbox_dir(attempt.pk)} {server.root} 2>&1;"
        " cat /etc/shadow 2>&1; echo procs: $(ps -e -o comm= | sort -u)",
    )
    assert result.returncode == 0, (result.stderr, server.log.read_text()[-2000:])
    out = result.stdout
    assert f"home=/home/agent pwd=/home/agent attempt={attempt.pk}" in out
    assert out.count("No such file or directory") == 3, out  # another workspace, the keeper's folder, sshd's
    assert "Permission denied" in out  # /etc/shadow
    processes = out.split("procs:", 1)[1].split()
    assert "sshd" not in processes  # none of the host's processes
    assert "rebench-ssh" not in processes
    assert "their-secret-work" not in out
    assert (layout.workspace(attempt.pk) / "made-over-ssh.txt").read_text() == "from-ssh\n"
    log = (layout.sandbox_dir(attempt.pk) / ssh_gate.COMMAND_LOG).read_text()
    assert "made-over-ssh.txt" in log
    # What the command printed is recorded too (asciicast events), and it ends up in the replay.
    recorded = (layout.sandbox_dir(attempt.pk) / ssh_gate.SSH_DIR / "session-1.out").read_text()
    assert f"attempt={attempt.pk}" in recorded


def test_scp_and_sftp_write_and_read_the_workspace_as_the_attempts_user(
    attempt: Attempt, server: support.SSHServer, key: tuple[Path, str], term_dirs: Path
) -> None:
    login = open_access(attempt, key[1])
    local = term_dirs / "client" / "upload.txt"
    local.write_text("sent-with-scp")
    options = ["-F", "/dev/null", "-i", str(key[0]), "-P", str(server.port), "-o", "BatchMode=yes"]
    options += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
    sent = subprocess.run(
        ["scp", *options, str(local), f"{login}@127.0.0.1:upload.txt"], capture_output=True, check=False
    )
    assert sent.returncode == 0, sent.stderr
    written = layout.workspace(attempt.pk) / "upload.txt"
    assert written.read_text() == "sent-with-scp"
    assert written.stat().st_uid == users.attempt_user(attempt.pk).uid
    batch = term_dirs / "client" / "batch"
    batch.write_text(f"get upload.txt {term_dirs}/client/back.txt\nls /\n")
    sftp = subprocess.run(
        ["sftp", *options, "-b", str(batch), f"{login}@127.0.0.1"], capture_output=True, text=True, check=False
    )
    assert sftp.returncode == 0, sftp.stderr
    assert (term_dirs / "client" / "back.txt").read_text() == "sent-with-scp"
    # A command reads the session's input through the keeper's pipe, to its end.
    piped = server.ssh(login, key[0], "cat > piped.txt; wc -c < piped.txt", input="piped-bytes")
    assert piped.stdout.strip() == "11"
    assert (layout.workspace(attempt.pk) / "piped.txt").read_text() == "piped-bytes"


@ts.sync
async def test_an_interactive_session_is_a_recorded_terminal_in_the_same_sandbox_as_the_browsers(
    attempt: Attempt, server: support.SSHServer, key: tuple[Path, str]
) -> None:
    import asyncio

    login = await asyncio.to_thread(open_access, attempt, key[1])
    screen = await open_shell(attempt)
    await run(screen, "sleep 600 & echo started")
    output = await asyncio.to_thread(server.interactive, login, key[0], "echo typed-$((40+2)); pgrep -c sleep; exit\n")
    await close(screen)
    lines = ANSI.sub(b"", output.encode()).decode().split("\n")
    assert "typed-42" in lines, output
    assert lines[lines.index("typed-42") + 1] == "1"  # the browser tab's `sleep` is in this session's view
    recording = (layout.sandbox_dir(attempt.pk) / ssh_gate.SSH_DIR / "session-1.out").read_text()
    assert "typed-42" in recording  # the output, as the holder recorded it (asciicast "o" events)
    assert '"o"' in recording
    # When the attempt ends, the session is a terminal of its replay, next to the browser's.
    await asyncio.to_thread(services.attempt_submit, attempt=attempt, by=expert(attempt))
    await asyncio.to_thread(services.terminals_finish, attempt_id=attempt.pk)
    session = await TerminalSession.objects.aget(attempt=attempt, number=terminals.SSH_SESSION_BASE + 1)
    assert session.end_reason == "SSH session 1"
    assert "typed-42" in "".join(recording_module.cast_lines(session.recording_name))


def test_a_key_added_or_removed_while_the_attempt_runs_reaches_the_workstation_through_its_control_task(
    attempt: Attempt, server: support.SSHServer, key: tuple[Path, str]
) -> None:
    from trials.services.sync import attempt_sandbox_control_send

    login = open_access(attempt)
    assert server.ssh(login, key[0], "true").returncode == 255
    added = services.ssh_key_add(user=expert(attempt), public_key=key[1])
    attempt_sandbox_control_send(attempt_id=attempt.pk)  # what the queued task runs on the workstation's queue
    assert server.ssh(login, key[0], "true").returncode == 0
    services.ssh_key_delete(key=added, by=expert(attempt))
    attempt_sandbox_control_send(attempt_id=attempt.pk)
    assert not ssh_access.keys_file(attempt.pk).exists()
    assert server.ssh(login, key[0], "true").returncode == 255


def test_a_wrong_key_or_another_attempts_account_is_refused(
    attempt: Attempt, another_attempt: Attempt, server: support.SSHServer, key: tuple[Path, str], term_dirs: Path
) -> None:
    login = open_access(attempt, key[1])
    other_login = open_access(another_attempt)
    stranger = support.make_key(term_dirs / "client", "stranger")
    assert server.ssh(login, stranger[0], "true").returncode == 255
    refused = server.ssh(other_login, key[0], "true")
    assert refused.returncode == 255
    assert "Permission denied" in refused.stderr


def test_a_paused_attempt_refuses_sessions_and_an_ended_one_refuses_the_key_and_closes_live_sessions(
    attempt: Attempt, server: support.SSHServer, key: tuple[Path, str]
) -> None:
    login = open_access(attempt, key[1])
    assert server.ssh(login, key[0], "true").returncode == 0
    services.attempt_pause(attempt=attempt, by=expert(attempt), reason=Pause.Reason.BREAK)
    resend_control(attempt)
    refused = server.ssh(login, key[0], "true")
    assert refused.returncode == 255
    assert "Permission denied" in refused.stderr  # the keys are withdrawn
    services.attempt_resume(attempt=attempt, by=expert(attempt))
    resend_control(attempt)
    assert server.ssh(login, key[0], "true").returncode == 0

    options = [
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
    ]
    live = subprocess.Popen(  # a session that would run for ten minutes
        ["ssh", "-F", "/dev/null", "-i", str(key[0]), "-p", str(server.port), *options, "-tt", f"{login}@127.0.0.1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert live.stdin is not None
    live.stdin.write(b"sleep 600\n")
    live.stdin.flush()
    deadline = time.monotonic() + 20
    while not list((layout.sandbox_dir(attempt.pk) / ssh_gate.SSH_DIR).glob("*.sock.pid")):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    services.attempt_submit(attempt=attempt, by=expert(attempt))
    resend_control(attempt)
    end_attempt_sync(attempt.pk)
    assert live.wait(20) is not None  # the live session was closed
    assert not ssh_access.keys_file(attempt.pk).exists()
    refused = server.ssh(login, key[0], "true")
    assert refused.returncode == 255
    assert "Permission denied" in refused.stderr


def test_sessions_past_the_attempts_limit_are_refused(
    attempt: Attempt, server: support.SSHServer, key: tuple[Path, str], settings: object
) -> None:
    settings.SSH_ACCESS_MAX_SESSIONS = 1  # type: ignore[attr-defined]
    login = open_access(attempt, key[1])
    options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    first = subprocess.Popen(  # an interactive session that stays open
        ["ssh", "-F", "/dev/null", "-i", str(key[0]), "-p", str(server.port), *options, "-tt", f"{login}@127.0.0.1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not list((layout.sandbox_dir(attempt.pk) / ssh_gate.SSH_DIR).glob("*.sock.pid")):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        refused = server.ssh(login, key[0], "echo ran")
        assert "ran" not in refused.stdout
        assert "1 SSH sessions open already" in refused.stderr
    finally:
        first.kill()
        first.wait()


def test_from_inside_a_session_the_expert_cant_add_a_key(
    attempt: Attempt, server: support.SSHServer, key: tuple[Path, str], term_dirs: Path
) -> None:
    login = open_access(attempt, key[1])
    extra = support.make_key(term_dirs / "client", "planted")
    keys_file = ssh_access.keys_file(attempt.pk)
    attack = server.ssh(
        login,
        key[0],
        f"echo '{extra[1]}' >> {keys_file}; mkdir -p ~/.ssh; echo '{extra[1]}' >> ~/.ssh/authorized_keys;"
        f" echo '{extra[1]}' >> /etc/ssh/authorized_keys 2>&1; echo done",
    )
    assert "done" in attack.stdout
    assert extra[1].split()[1] not in keys_file.read_text()
    assert server.ssh(login, extra[0], "true").returncode == 255


@pytest.mark.parametrize(
    "options",
    [
        ("-W", "127.0.0.1:5432"),  # stdio forwarding to the server's PostgreSQL
        ("-W", "127.0.0.1:6379"),  # and its Redis
        ("-o", "ExitOnForwardFailure=yes", "-L", "0:127.0.0.1:5432", "-N"),
        ("-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:22", "-N"),
        ("-o", "ExitOnForwardFailure=yes", "-D", "0", "-N"),
    ],
    ids=["stdio-postgres", "stdio-redis", "local", "remote", "dynamic"],
)
def test_a_session_cant_forward_ports_to_the_servers_database_or_redis(
    attempt: Attempt, server: support.SSHServer, key: tuple[Path, str], options: tuple[str, ...]
) -> None:
    login = open_access(attempt, key[1])
    result = server.ssh(login, key[0], options=options, timeout=20, stdin=subprocess.DEVNULL)
    assert result.returncode != 0, result
    assert "prohibited" in result.stderr or "forwarding" in result.stderr.lower(), result.stderr
    # And inside the sandbox there is no way to the host's loopback either.
    inside = server.ssh(login, key[0], "(echo > /dev/tcp/127.0.0.1/5432) 2>&1; echo rc=$?")
    assert "rc=1" in inside.stdout


@pytest.mark.parametrize(
    "command",
    [
        "touch {state}/escaped",  # the keeper's folder, by its host path
        "exec /usr/bin/env touch {state}/escaped",
        "internal-sftp; touch {state}/escaped",
        "'; touch {state}/escaped; '",
    ],
)
def test_no_command_given_to_ssh_runs_outside_the_sandbox(
    attempt: Attempt, server: support.SSHServer, key: tuple[Path, str], command: str
) -> None:
    login = open_access(attempt, key[1])
    state = layout.sandbox_dir(attempt.pk)
    # The attempt's user owns nothing there, but a command outside could still see it and its sockets.
    result = server.ssh(login, key[0], command.format(state=state) + "; ls -d " + str(state) + " 2>&1")
    assert not (state / "escaped").exists()
    assert "No such file or directory" in result.stdout + result.stderr, result
    with_env = server.ssh(
        login, key[0], f"ls -d {state} 2>&1", options=("-o", "SetEnv=BASH_ENV=/home/agent/x LD_PRELOAD=/home/agent/x")
    )
    assert "No such file or directory" in with_env.stdout


def test_the_drop_in_sshd_accepts_refuses_forwarding_and_forces_the_sandbox(term_dirs: Path) -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("ssh_access_config", stdout=out)
    text = out.getvalue()
    assert text == ssh_access.sshd_config()
    assert (layout.tools_dir() / "rebench-ssh").is_file()  # the forced command the drop-in names is installed
    assert f"Match User {users.attempt_user_name(0)[:-1]}*" in text
    for line in ("AllowTcpForwarding no", "AllowStreamLocalForwarding no", "PermitTunnel no", "PermitUserRC no"):
        assert line in text
    assert "ForceCommand " in text
    assert "rebench-ssh" in text
    assert os.path.basename(str(ssh_access.keys_dir())) in text
