"""SSH into an attempt: a real OpenSSH sshd with the project's drop-in, the expert's key, the attempt's sandbox.

Every session lands in the attempt's sandbox (the same view as the browser terminal), interactive
ones are recorded like a tab, and from inside a session the expert can't add a key, forward a port
to the server's PostgreSQL or Redis, or get a command run outside the sandbox.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
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


# --- The tunnel: VS Code Remote-SSH's forwarding, opened inside the sandbox -------------------------------


def _host_listener(secret: bytes) -> tuple[int, socket.socket]:
    """A server on the host's loopback that hands every connection `secret` (as PostgreSQL or Redis would
    hand over data): its port, and the socket to close."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection, contextlib.suppress(OSError):
                connection.sendall(secret)

    threading.Thread(target=serve, daemon=True).start()
    return int(listener.getsockname()[1]), listener


def _wait_for_tunnel(attempt: Attempt, count: int = 1) -> None:
    log = layout.sandbox_dir(attempt.pk) / ssh_gate.COMMAND_LOG
    deadline = time.monotonic() + 30
    while not log.exists() or log.read_text().count('"tunnel", "opened"') < count:
        assert time.monotonic() < deadline, "the tunnel never opened"
        time.sleep(0.1)


def test_vs_codes_way_in_runs_its_server_in_the_sandbox_and_forwards_to_it_through_the_tunnel(
    attempt: Attempt, server: support.SSHServer, key: tuple[Path, str]
) -> None:
    login = open_access(attempt, key[1])
    served = layout.workspace(attempt.pk) / "hello.txt"
    served.write_text("served-from-the-workspace")
    served.chmod(0o644)
    inside, local, socks = support.free_port(), support.free_port(), support.free_port()
    # As Remote-SSH does: one connection runs the editor's server (an exec channel) on the remote loopback
    # and reaches it through forwarding (direct-tcpip channels): a local port, and a SOCKS proxy (`-D`,
    # what Remote-SSH's local server mode opens).
    editor = subprocess.Popen(
        server.tunnel_argv(
            login,
            key[0],
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
            f"{local}:127.0.0.1:{inside}",
            "-D",
            str(socks),
            f"{login}@attempt-sandbox",
            f"exec python3 -m http.server --bind 127.0.0.1 {inside}",
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        body, deadline, error = "", time.monotonic() + 30, ""
        while not body:
            assert editor.poll() is None, editor.stderr.read() if editor.stderr else ""
            assert time.monotonic() < deadline, error
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{local}/hello.txt", timeout=5).read().decode()
            except OSError as exc:
                error = repr(exc)
            time.sleep(0.2)
        assert body == "served-from-the-workspace"
        with socket.create_connection(("127.0.0.1", socks), timeout=10) as proxy:
            proxy.sendall(b"\x05\x01\x00")  # SOCKS5, no authentication
            assert proxy.recv(2) == b"\x05\x00"
            proxy.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + inside.to_bytes(2, "big"))
            assert proxy.recv(10)[:2] == b"\x05\x00"  # connected, from inside the sandbox
            proxy.sendall(b"GET /hello.txt HTTP/1.0\r\n\r\n")
            answer = b""
            while chunk := proxy.recv(65536):
                answer += chunk
        assert answer.endswith(b"served-from-the-workspace")
    finally:
        editor.kill()
        editor.wait()
    # Its commands run in the attempt's sandbox, with the sandbox's environment, at home in the workspace.
    shown = server.through_tunnel(
        login, key[0], "echo home=$HOME attempt=$REBENCH_ATTEMPT_ID host=$(hostname) pwd=$(pwd -P) user=$(id -un)"
    )
    assert shown.returncode == 0, (shown.stderr, server.log.read_text()[-2000:])
    assert (
        f"home=/home/agent attempt={attempt.pk} host=attempt-{attempt.pk} pwd=/home/agent user={login}" in shown.stdout
    )
    assert "Could not chdir" not in shown.stderr
    log = (layout.sandbox_dir(attempt.pk) / ssh_gate.COMMAND_LOG).read_text()
    assert log.count('"tunnel", "opened"') == 2
    assert '"tunnel", "closed (the connection ended)"' in log


def test_the_tunnels_forwarding_reaches_nothing_of_the_hosts(
    attempt: Attempt, server: support.SSHServer, key: tuple[Path, str], term_dirs: Path
) -> None:
    login = open_access(attempt, key[1])
    port, listener = _host_listener(b"host-secret")
    folder = Path(tempfile.mkdtemp(prefix="rebench-unix-", dir="/run"))
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(folder / "service.sock"))
    unix.listen(4)
    # Anyone on the host may connect: only the sandbox stops the tunnel.
    os.chmod(folder, 0o755)  # noqa: S103 - open to everyone on purpose
    os.chmod(folder / "service.sock", 0o777)  # noqa: S103 - open to everyone on purpose
    threading.Thread(target=lambda: unix.accept()[0].sendall(b"host-secret"), daemon=True).start()
    try:
        # The host's own view, for contrast: what the sandbox must not reach is there.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as probe:
            assert probe.recv(64) == b"host-secret"
        for target in (f"127.0.0.1:{port}", "127.0.0.1:5432", "127.0.0.1:6379", f"localhost:{port}"):
            result = server.through_tunnel(login, key[0], options=("-W", target), timeout=30)
            assert "host-secret" not in result.stdout
            assert result.returncode != 0, (target, result)
        local = support.free_port()
        stream = subprocess.Popen(
            server.tunnel_argv(
                login, key[0], "-L", f"127.0.0.1:{local}:{folder}/service.sock", "-N", f"{login}@attempt-sandbox"
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_tunnel(attempt)
            got, deadline = b"", time.monotonic() + 5
            while time.monotonic() < deadline and not got:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local), timeout=3) as s:
                    got = s.recv(64)
                time.sleep(0.2)
            assert got == b""  # the socket's path is not in the sandbox's view: the forward opens nothing
        finally:
            stream.kill()
            stream.wait()
        # Listening is the host's to do: the tunnel forwards only outward.
        remote = server.through_tunnel(
            login, key[0], options=("-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:22", "-N"), timeout=30
        )
        assert remote.returncode != 0
    finally:
        listener.close()
        unix.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_an_open_tunnel_closes_when_the_attempt_pauses_or_ends_and_none_opens_meanwhile(
    attempt: Attempt, server: support.SSHServer, key: tuple[Path, str]
) -> None:
    login = open_access(attempt, key[1])

    def open_tunnel() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            server.tunnel_argv(login, key[0], "-N", "-D", str(support.free_port()), f"{login}@attempt-sandbox"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    live = open_tunnel()
    _wait_for_tunnel(attempt)
    services.attempt_pause(attempt=attempt, by=expert(attempt), reason=Pause.Reason.BREAK)
    resend_control(attempt)
    assert live.wait(20) != 0  # a frozen sshd would hold it open: the keeper closes it
    assert live.stderr is not None
    assert "paused" in live.stderr.read().decode()
    refused = server.through_tunnel(login, key[0], "true")
    assert refused.returncode != 0
    services.attempt_resume(attempt=attempt, by=expert(attempt))
    resend_control(attempt)
    assert server.through_tunnel(login, key[0], "true").returncode == 0

    live = open_tunnel()
    _wait_for_tunnel(attempt, 3)
    services.attempt_submit(attempt=attempt, by=expert(attempt))
    resend_control(attempt)
    end_attempt_sync(attempt.pk)
    assert live.wait(20) != 0
    assert server.through_tunnel(login, key[0], "true").returncode != 0


def test_a_workstation_that_turns_the_tunnel_off_refuses_it_and_the_page_leaves_it_out(
    attempt: Attempt, server: support.SSHServer, key: tuple[Path, str], settings: object
) -> None:
    settings.SSH_ACCESS_TUNNEL = False  # type: ignore[attr-defined]
    login = open_access(attempt, key[1])
    refused = server.through_tunnel(login, key[0], "echo reached")
    assert "reached" not in refused.stdout
    assert "doesn't offer the tunnel" in refused.stderr
    assert server.ssh(login, key[0], "echo plain").stdout.strip() == "plain"  # the rest of SSH is as it was
    assert ssh_gate.TUNNEL_COMMAND not in selectors.attempt_ssh_command(attempt)["config"]


def test_keys_in_folders_the_workstation_makes_itself_open_the_attempt_whatever_its_umask(
    attempt: Attempt, term_dirs: Path, key: tuple[Path, str], settings: object
) -> None:
    # A fresh host: nothing of SSH_ACCESS_KEYS_DIR exists yet, and the worker runs with umask 077.
    with support.keys_folder(settings) as keys:
        deep = keys.parent / "etc" / "rebench" / "ssh" / "authorized"
        settings.SSH_ACCESS_KEYS_DIR = deep  # type: ignore[attr-defined]
        with support.sshd(term_dirs / "fresh-sshd") as fresh:
            before = os.umask(0o077)
            try:
                login = open_access(attempt, key[1])
            finally:
                os.umask(before)
            assert fresh.ssh(login, key[0], "echo in").stdout.strip() == "in", fresh.log.read_text()[-2000:]
        for folder in (deep, *list(deep.parents)[:3]):
            info = folder.stat()
            assert (info.st_uid, info.st_mode & 0o777) == (0, 0o755), folder
