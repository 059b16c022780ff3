"""The `local` backend: this machine. Shells run in the attempt's sandbox, their terminals held by tmux outside it."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import shutil
import struct
import subprocess
import termios
from pathlib import Path
from typing import Any

from django.conf import settings

from workstation import layout, policy, sandbox, tmux, users, workspaces
from workstation.backends import Backend, BackendError, SandboxRequest, Shell, ShellSpec
from workstation.users import ShellUser

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
# Reads already waiting are joined into one frame up to this size: fewer, larger WebSocket frames.
# A quarter of the default high-water mark, so several frames are in flight while the browser draws
# and acks, instead of one frame filling the window and the server waiting a round trip for each.
COALESCE_LIMIT = 64 * 1024
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def tmux_path() -> str:
    found = shutil.which(settings.TERMINAL_TMUX)
    if not found:
        raise BackendError(
            f"tmux is not installed on this workstation ({settings.TERMINAL_TMUX!r} not on PATH); "
            "the terminal needs it to keep shells alive across reconnects. Install it: apt-get install tmux."
        )
    return found


def system_python() -> str:
    """A python3 every user may run (the tmux user runs the recorder and the attach client with it)."""
    return shutil.which("python3", path=SYSTEM_PATH) or "/usr/bin/python3"


def _as(user: ShellUser) -> dict[str, Any]:
    return {"user": user.uid, "group": user.gid, "extra_groups": []} if os.geteuid() == 0 else {}


def _tmux_env() -> dict[str, str]:
    return {"HOME": "/", "PATH": SYSTEM_PATH, "LANG": os.environ.get("LANG", "C.UTF-8"), "TERM": "xterm-256color"}


def prepare_workspace(attempt_id: int, user: ShellUser) -> Path:
    """The attempt's workspace folder, `user`'s alone."""
    return workspaces.make_folder(layout.workspace(attempt_id), uid=user.uid, gid=user.gid)


def give_file(path: str, user: ShellUser, mode: int = 0o600) -> None:
    """Make `path` (a file in a folder of ours) belong to `user`, never following a link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, mode)
    try:
        if os.geteuid() == 0:
            os.fchown(fd, user.uid, user.gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def sandbox_up(request: SandboxRequest, control: dict[str, Any] | None = None) -> sandbox.Policy:
    """Start the attempt's sandbox unless it runs (users, workspace and tools made first); apply `control`."""
    try:
        found = policy.local_policy(request)
        layout.install_tools()
        prepare_workspace(request.attempt_id, users.ShellUser("", found.uid, found.gid, ""))
        command, env = policy.launcher()
        sandbox.ensure(found, command, env=env)
        if control:
            sandbox.control(found.state_dir, control)
    except (users.UnixUserError, sandbox.SandboxError, sandbox.cgroups.CgroupError) as exc:
        raise BackendError(f"The attempt's sandbox could not start: {exc}") from exc
    return found


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _become_session_leader_of_tty() -> None:  # runs in the child between fork and exec
    # The PTY must be the tmux client's controlling terminal, or resizes never reach it (SIGWINCH).
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def spawn_on_pty(
    argv: list[str], user: ShellUser, *, cols: int, rows: int, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Start `argv` as `user` on a fresh PTY of cols × rows, as its controlling terminal; (process, master fd).

    Forks in a thread: forking a large server process takes milliseconds that every other terminal
    on this event loop would wait for.
    """
    master, slave = os.openpty()
    try:
        _set_size(slave, cols, rows)
        if os.geteuid() == 0:
            os.fchown(slave, user.uid, user.gid)

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(  # noqa: S603
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd="/",
                env=env if env is not None else _tmux_env(),
                start_new_session=True,
                preexec_fn=_become_session_leader_of_tty,  # exec follows at once
                close_fds=True,
                **_as(user),
            )

        process = await asyncio.to_thread(start)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return process, master


class LocalShell(Shell):
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
    return subprocess.run(  # noqa: S603 - tmux with arguments we build
        argv, capture_output=True, check=False, timeout=10, env=_tmux_env(), cwd="/", **_as(user)
    )


def _socket(attempt_id: int) -> str:
    return layout.sandbox_name(attempt_id)


def _record_command(spec: ShellSpec, user: ShellUser) -> str | None:
    """The pane recorder's `pipe-pane` command, its spool file handed to the tmux user; None when not recorded."""
    if not spec.spool_output:
        return None
    give_file(spec.spool_output, user)
    return tmux.record_command(system_python(), str(layout.tools_dir() / "rebench-record"), spec.spool_output)


def _create_session(spec: ShellSpec, found: sandbox.Policy, user: ShellUser) -> None:
    """Start the attempt's tmux server and this terminal's session, recorded by pipe-pane, unless it exists."""
    session = tmux.session_name(spec.attempt_id, spec.number)
    pane = tmux.attach_command(
        system_python(),
        str(Path(found.tools_dir) / sandbox.SPAWNER),
        str(Path(found.state_dir) / sandbox.SPAWN_SOCKET),
        spec.number,
    )
    argv = tmux.create_argv(
        tmux=tmux_path(),
        socket=_socket(spec.attempt_id),
        session=session,
        cols=spec.cols,
        rows=spec.rows,
        pane_command=pane,
        cwd="/",
        record=_record_command(spec, user),
    )
    result = _run_tmux(argv, user)
    if result.returncode != 0 and b"duplicate session" not in result.stderr:
        raise BackendError(f"tmux could not start the shell: {result.stderr.decode(errors='replace').strip()}")


def _tmux_user() -> ShellUser:
    try:
        return users.tmux_user()
    except users.UnixUserError as exc:
        raise BackendError(f"The terminal's tmux user can't be used: {exc}") from None


class LocalBackend(Backend):
    async def session_exists(self, spec: ShellSpec) -> bool:
        argv = tmux.has_session_argv(
            tmux=tmux_path(), socket=_socket(spec.attempt_id), session=tmux.session_name(spec.attempt_id, spec.number)
        )
        user = await asyncio.to_thread(_tmux_user)
        return (await asyncio.to_thread(_run_tmux, argv, user)).returncode == 0

    def _prepare(self, spec: ShellSpec) -> ShellUser:
        found = sandbox_up(spec.sandbox, spec.control)
        user = _tmux_user()
        if spec.token:
            sandbox.set_token(found.state_dir, spec.token, uid=user.uid)
        if not spec.readonly:
            _create_session(spec, found, user)
        return user

    async def open(self, spec: ShellSpec) -> LocalShell:
        tmux_binary = tmux_path()
        # Users, the sandbox and tmux are slow (useradd, bubblewrap): in a thread, off the event loop.
        user = await asyncio.to_thread(self._prepare, spec)
        argv = tmux.attach_argv(
            tmux=tmux_binary,
            socket=_socket(spec.attempt_id),
            session=tmux.session_name(spec.attempt_id, spec.number),
            readonly=spec.readonly,
        )
        try:
            process, master = await spawn_on_pty(argv, user, cols=spec.cols, rows=spec.rows)
        except OSError as exc:
            raise BackendError(f"Could not start the shell: {exc}") from exc
        return LocalShell(process, master)

    async def ensure_recording(self, spec: ShellSpec) -> bool:
        """Restart the pane's recorder if it has stopped (it crashed); True if it had to."""
        if spec.readonly or not spec.spool_output:
            return False
        return await asyncio.to_thread(_ensure_recording_sync, spec)

    async def pull_recording(self, attempt_id: int, number: int, dest: Path) -> int:
        return 0  # the pane recorder writes this machine's spool itself

    async def collect_recordings(self, attempt_id: int, recordings: list[tuple[int, Path]]) -> None:
        return None  # already here

    async def sandbox_control(self, attempt_id: int, control: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(sandbox.control, str(layout.sandbox_dir(attempt_id)), control)

    async def sandbox_status(self, attempt_id: int) -> dict[str, Any]:
        return await asyncio.to_thread(sandbox.status, str(layout.sandbox_dir(attempt_id)))

    async def end_attempt(self, attempt_id: int) -> bool:
        return await asyncio.to_thread(end_attempt_sync, attempt_id)

    async def disconnect(self) -> None:
        return None


def _ensure_recording_sync(spec: ShellSpec) -> bool:
    user = _tmux_user()
    session = tmux.session_name(spec.attempt_id, spec.number)
    socket = _socket(spec.attempt_id)
    result = _run_tmux(tmux.pane_pipe_argv(tmux=tmux_path(), socket=socket, session=session), user)
    if result.returncode != 0 or result.stdout.strip() != b"0":
        return False  # recording, or no such session (it is being made, or has ended)
    record = _record_command(spec, user)
    assert record is not None  # spec.spool_output is set
    rearm = tmux.recorder_rearm_argv(tmux=tmux_path(), socket=socket, session=session, record=record)
    return _run_tmux(rearm, user).returncode == 0


def end_attempt_sync(attempt_id: int) -> bool:
    """Kill the attempt's tmux server and stop its sandbox's processes; True if either ran. Idempotent."""
    ended = False
    binary = shutil.which(settings.TERMINAL_TMUX)
    if binary:
        with contextlib.suppress(users.UnixUserError):
            user = users.tmux_user(create=False)
            ended = _run_tmux(tmux.kill_argv(tmux=binary, socket=_socket(attempt_id)), user).returncode == 0
    stopped = sandbox.stop(str(layout.sandbox_dir(attempt_id)))
    if ended or stopped:
        log.info("attempt %s: ended its tmux server and sandbox", attempt_id)
    return ended or stopped
