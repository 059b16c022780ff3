"""The `local` backend: the shell in a PTY on this machine, inside tmux, never as root."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import shlex
import shutil
import struct
import subprocess
import termios
from pathlib import Path

from django.conf import settings

from trials import unix_users
from trials.backends import (
    BackendError,
    ShellSpec,
    pane_pipe_argv,
    record_command,
    recorder_rearm_argv,
    tmux_attach_argv,
    tmux_create_argv,
    tmux_kill_argv,
)
from trials.unix_users import ShellUser

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
# Reads already waiting are joined into one frame up to this size: fewer, larger WebSocket frames.
# A quarter of the default high-water mark, so several frames are in flight while the browser draws
# and acks, instead of one frame filling the window and the server waiting a round trip for each.
COALESCE_LIMIT = 64 * 1024
TASK_SOURCE = Path(__file__).resolve().parent.parent / "terminal_task.py"
RECORDER_SOURCE = Path(__file__).resolve().parent.parent / "cast_pipe.py"


def shell_user(attempt_id: int | None = None) -> ShellUser:
    """Who local shells run as: this process's user, or, when we are root, never root.

    With an attempt: its own user (trials.unix_users: `rb-a<id>` by default), so attempts can't
    read each other's workspaces. Without one (the test SSH server): TERMINAL_LOCAL_USER.
    """
    try:
        if attempt_id is not None:
            return unix_users.attempt_user(attempt_id)
        return unix_users.shared_user()
    except unix_users.UnixUserError as exc:
        raise BackendError(f"The server runs as root and shells never do, but {exc}") from None


def tmux_path() -> str:
    found = shutil.which(settings.TERMINAL_TMUX)
    if not found:
        raise BackendError(
            f"tmux is not installed on this workstation ({settings.TERMINAL_TMUX!r} not on PATH); "
            "the terminal needs it to keep shells alive across reconnects. Install it: apt-get install tmux."
        )
    return found


def _owned_dir(path: Path, user: ShellUser, mode: int = 0o755) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, user.uid, user.gid)
    path.chmod(mode)
    return path


def workspace_for(attempt_id: int) -> Path:
    return Path(settings.TERMINAL_WORKSPACE_ROOT) / f"attempt-{attempt_id}"


def prepare_workspace(attempt_id: int, user: ShellUser) -> tuple[Path, Path]:
    """The attempt's workspace and the bin directory holding `task`; both readable by the shell user."""
    root = Path(settings.TERMINAL_WORKSPACE_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    bin_dir = root / ".bin"
    bin_dir.mkdir(exist_ok=True)
    bin_dir.chmod(0o755)
    for program, source_path in (("task", TASK_SOURCE), ("rebench-record", RECORDER_SOURCE)):
        target = bin_dir / program
        source = source_path.read_bytes()
        if not target.exists() or target.read_bytes() != source:
            tmp = bin_dir / f".{program}.{os.getpid()}"
            tmp.write_bytes(source)
            tmp.chmod(0o755)  # root-owned: the expert runs it but can't change it
            tmp.replace(target)
    workspace = _owned_dir(workspace_for(attempt_id), user, 0o700)
    return workspace, bin_dir


def write_token(user: ShellUser, spec: ShellSpec) -> None:
    path = Path(user.home) / spec.token_file
    _owned_dir(path.parent.parent, user, 0o700)
    _owned_dir(path.parent, user, 0o700)
    path.write_text(spec.token)
    path.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(path, user.uid, user.gid)


def _child_env(user: ShellUser, bin_dir: Path) -> dict[str, str]:
    return {
        "HOME": user.home,
        "USER": user.name,
        "LOGNAME": user.name,
        "SHELL": settings.TERMINAL_SHELL,
        "TERM": "xterm-256color",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
    }


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _become_session_leader_of_tty() -> None:  # runs in the child between fork and exec
    # The PTY must be the tmux client's controlling terminal, or resizes never reach it (SIGWINCH).
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class LocalShell:
    """The tmux client's PTY. Output is read by a callback that stays registered while fewer than
    COALESCE_LIMIT bytes wait unread: one wake-up and one read per burst, no registering and
    unregistering with the event loop for every read (two epoll_ctl calls per keystroke's echo).
    Once that much waits, reading stops until the pump takes it: flow control and pacing hold tmux
    back exactly as a blocked reader would.
    """

    def __init__(self, process: subprocess.Popen[bytes], fd: int) -> None:
        self.process = process
        self.fd = fd
        os.set_blocking(fd, False)
        self._closed = False
        self._buffer = bytearray()
        self._eof = False
        self._reading: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None

    async def _wait_writable(self) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not future.done():
                future.set_result(None)

        loop.add_writer(self.fd, ready)
        try:
            await future
        finally:
            # Level-triggered: a writer left registered while the PTY is full would spin.
            loop.remove_writer(self.fd)

    def _start_reading(self) -> None:
        if self._reading is None and not (self._closed or self._eof):
            loop = asyncio.get_running_loop()
            loop.add_reader(self.fd, self._on_readable)
            self._reading = loop

    def _stop_reading(self) -> None:
        if self._reading is not None:
            self._reading.remove_reader(self.fd)
            self._reading = None

    def _on_readable(self) -> None:
        try:
            while len(self._buffer) < COALESCE_LIMIT:
                data = os.read(self.fd, READ_CHUNK)
                if not data:
                    self._eof = True
                    break
                self._buffer += data
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno not in (errno.EIO, errno.EBADF):  # EIO: the other side of the PTY is gone
                log.warning("reading the terminal failed: %s", exc)
            self._eof = True
        if self._eof or len(self._buffer) >= COALESCE_LIMIT:
            self._stop_reading()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self) -> bytes:
        while not self._buffer and not (self._eof or self._closed):
            self._start_reading()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = bytes(self._buffer)
        self._buffer.clear()
        self._start_reading()  # room again (it stopped at the limit)
        return data

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._closed:
            try:
                written = os.write(self.fd, view)
            except BlockingIOError:
                await self._wait_writable()
                continue
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):
                    return
                raise
            view = view[written:]

    def resize(self, cols: int, rows: int) -> None:
        if not self._closed:
            _set_size(self.fd, cols, rows)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_reading()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        os.close(self.fd)  # the tmux client sees a hang-up and detaches; the session lives on
        try:
            await asyncio.wait_for(asyncio.to_thread(self.process.wait), timeout=2)
        except TimeoutError:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)


def _run_tmux(argv: list[str], user: ShellUser) -> subprocess.CompletedProcess[bytes]:
    as_user = {"user": user.uid, "group": user.gid, "extra_groups": []} if os.geteuid() == 0 else {}
    return subprocess.run(  # noqa: S603 - tmux with arguments we build
        argv,
        capture_output=True,
        check=False,
        timeout=10,
        env={"HOME": user.home, "PATH": "/usr/local/bin:/usr/bin:/bin"},
        cwd="/",
        **as_user,
    )


def _record_command(spec: ShellSpec, bin_dir: Path, user: ShellUser) -> str | None:
    """The pane recorder's `pipe-pane` command, its spool made ready; None when the terminal isn't recorded."""
    from trials.recording import OUTPUT, prepare_spool

    if not spec.recording:
        return None
    title = f"attempt {spec.attempt_id} terminal {spec.number}"
    spool = prepare_spool(spec.recording, width=spec.cols, height=spec.rows, title=title, uid=user.uid, gid=user.gid)
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3"
    return record_command(python, shlex.quote(str(bin_dir / "rebench-record")), shlex.quote(str(spool / OUTPUT)))


def _create_session(
    spec: ShellSpec, tmux: str, workspace: Path, bin_dir: Path, user: ShellUser, env: dict[str, str]
) -> None:
    """Start the attempt's tmux server and this terminal's session, recorded by pipe-pane, unless it exists."""
    record = _record_command(spec, bin_dir, user)
    argv = tmux_create_argv(
        spec, tmux=tmux, workspace=str(workspace), program=settings.TERMINAL_SHELL, home=user.home, record=record
    )
    as_user = {"user": user.uid, "group": user.gid, "extra_groups": []} if os.geteuid() == 0 else {}
    result = subprocess.run(  # noqa: S603 - tmux with arguments we build
        argv, capture_output=True, check=False, timeout=10, env=env, cwd=str(workspace), **as_user
    )
    if result.returncode != 0 and b"duplicate session" not in result.stderr:
        raise BackendError(f"tmux could not start the shell: {result.stderr.decode(errors='replace').strip()}")


class LocalBackend:
    async def session_exists(self, spec: ShellSpec) -> bool:
        tmux = tmux_path()
        user = await asyncio.to_thread(shell_user, spec.attempt_id)
        result = await asyncio.to_thread(
            _run_tmux, [tmux, "-L", spec.socket_name, "has-session", "-t", f"={spec.session_name}"], user
        )
        return result.returncode == 0

    async def open(self, spec: ShellSpec) -> LocalShell:
        tmux = tmux_path()
        # Creating the attempt's user runs useradd: in a thread, like every other slow step here.
        user = await asyncio.to_thread(_attempt_shell_user, spec.attempt_id)
        workspace, bin_dir = await asyncio.to_thread(prepare_workspace, spec.attempt_id, user)
        if spec.token:
            await asyncio.to_thread(write_token, user, spec)
        env = _child_env(user, bin_dir)
        if not spec.readonly:
            await asyncio.to_thread(_create_session, spec, tmux, workspace, bin_dir, user, env)
        argv = tmux_attach_argv(spec, tmux=tmux)
        master, slave = os.openpty()
        try:
            _set_size(slave, spec.cols, spec.rows)
            as_user = {}
            if os.geteuid() == 0:
                os.fchown(slave, user.uid, user.gid)
                as_user = {"user": user.uid, "group": user.gid, "extra_groups": []}
            # In a thread: forking a large server process takes milliseconds that every other
            # terminal on this event loop would wait for.
            process = await asyncio.to_thread(
                subprocess.Popen,
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=str(workspace),
                env=env,
                start_new_session=True,
                preexec_fn=_become_session_leader_of_tty,  # exec follows at once
                close_fds=True,
                **as_user,
            )
        except OSError as exc:
            os.close(master)
            raise BackendError(f"Could not start the shell: {exc}") from exc
        finally:
            os.close(slave)
        return LocalShell(process, master)

    async def ensure_recording(self, spec: ShellSpec) -> bool:
        """Restart the pane's recorder if it has stopped; True if it had to (see recorder_rearm_argv)."""
        if spec.readonly or not spec.recording:
            return False
        return await asyncio.to_thread(_ensure_recording_sync, spec)

    async def end_attempt(self, attempt_id: int) -> None:
        await asyncio.to_thread(end_attempt_sync, attempt_id)


def _ensure_recording_sync(spec: ShellSpec) -> bool:
    tmux = tmux_path()
    user = shell_user(spec.attempt_id)
    result = _run_tmux(pane_pipe_argv(spec, tmux=tmux), user)
    if result.returncode != 0 or result.stdout.strip() != b"0":
        return False  # recording, or no such session (it is being made, or has ended)
    record = _record_command(spec, Path(settings.TERMINAL_WORKSPACE_ROOT) / ".bin", user)
    assert record is not None  # spec.recording is set
    result = _run_tmux(recorder_rearm_argv(spec, tmux=tmux, record=record), user)
    return result.returncode == 0


def end_attempt_sync(attempt_id: int) -> bool:
    """Kill the attempt's tmux server; True if there was one. Safe to call any number of times."""
    tmux = shutil.which(settings.TERMINAL_TMUX)
    if not tmux:
        return False
    users = []
    with contextlib.suppress(unix_users.UnixUserError):
        users.append(unix_users.attempt_user(attempt_id, create=False))
    # Shells opened as the shared user (per-attempt users off, or opened before they were on).
    with contextlib.suppress(unix_users.UnixUserError):
        users.append(unix_users.shared_user(create=False))
    ended = False
    for user in dict.fromkeys(users):
        result = _run_tmux(tmux_kill_argv(attempt_id, tmux=tmux), user)
        ended = ended or result.returncode == 0
    if ended:
        log.info("attempt %s: ended its tmux sessions", attempt_id)
    return ended


def _attempt_shell_user(attempt_id: int) -> ShellUser:
    """The attempt's user for a shell being opened: created if new, its expiry cleared if an old id's."""
    try:
        return unix_users.attempt_user(attempt_id, reopen=True)
    except unix_users.UnixUserError as exc:
        raise BackendError(f"The server runs as root and shells never do, but {exc}") from None
