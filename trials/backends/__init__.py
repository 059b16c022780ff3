"""Workstation backends for the terminal: one small interface, a local PTY and an SSH implementation."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Protocol


class BackendError(Exception):
    """The shell could not be opened or was lost; the message is shown to the user in the terminal."""


@dataclass(frozen=True)
class ShellSpec:
    """What to open: terminal `number` of an attempt, its size, and whose it is."""

    attempt_id: int
    number: int
    cols: int = 80
    rows: int = 24
    readonly: bool = False
    # Only used when the tmux session is created; an existing session keeps its environment.
    env: dict[str, str] = field(default_factory=dict)
    socket_prefix: str = "rebench"
    # The `task` command's token: written to a file only the shell's user reads (REBENCH_TOKEN_FILE),
    # never put on a command line, where `ps` and SSH logs would show it.
    token: str = ""
    # Storage name of the recording (trials.recording); its spool is where tmux records the pane.
    recording: str = ""

    @property
    def socket_name(self) -> str:
        # One tmux server per attempt: ending the attempt is one kill-server, and attempts never
        # see each other's sessions.
        return socket_name(self.attempt_id, self.socket_prefix)

    @property
    def session_name(self) -> str:
        return f"attempt-{self.attempt_id}-terminal-{self.number}"

    @property
    def token_file(self) -> str:
        """Relative to the shell user's home."""
        return f".rebench/tokens/{self.session_name}"


class Shell(Protocol):
    async def read(self) -> bytes:
        """The next output bytes (several reads coalesced); b"" when the shell is gone."""
        ...

    async def write(self, data: bytes) -> None: ...

    def resize(self, cols: int, rows: int) -> None: ...

    async def close(self) -> None:
        """Detach: the tmux session (and everything running in it) lives on."""
        ...


class Backend(Protocol):
    async def session_exists(self, spec: ShellSpec) -> bool: ...

    async def open(self, spec: ShellSpec) -> Shell: ...

    async def ensure_recording(self, spec: ShellSpec) -> bool:
        """Restart the pane's recorder if it has stopped; True if it had to."""
        ...

    async def end_attempt(self, attempt_id: int) -> None:
        """Kill every tmux session of the attempt; the workspace stays for scoring."""
        ...


# tmux options: no status line (the page has tabs), no mouse mode (so the browser's selection and
# copy/paste work), a long history, the window follows the most recent client's size, and no wait
# after ESC: our keystrokes arrive whole in one write, so waiting only delays Esc for vim users.
TMUX_OPTIONS = [
    ("status", "off"),
    ("mouse", "off"),
    ("history-limit", "50000"),
    ("window-size", "latest"),
    ("escape-time", "0"),
]


def tmux_create_argv(
    spec: ShellSpec, *, tmux: str, workspace: str, program: str, home: str, record: str | None = None
) -> list[str]:
    """Create the session, detached, and start its recorder; exits 1 ("duplicate session") if it exists.

    tmux skips the rest of a command list after a failed command, so the recorder is piped only into
    a new session: exactly one recorder per pane, however many tabs attach.
    """
    # Options first: the session's first window must already get the non-login shell. A login
    # shell would reset PATH from /etc/profile and lose the `task` command.
    argv = [tmux, "-L", spec.socket_name, "start-server"]
    for name, value in [*TMUX_OPTIONS, ("default-command", program)]:
        argv += [";", "set-option", "-g", name, value]
    argv += [";", "new-session", "-d", "-s", spec.session_name, "-c", workspace]
    argv += ["-x", str(spec.cols), "-y", str(spec.rows)]
    env = dict(spec.env)
    if spec.token:
        env["REBENCH_TOKEN_FILE"] = f"{home}/{spec.token_file}"
    for key, value in sorted(env.items()):
        argv += ["-e", f"{key}={value}"]
    if record:
        argv += [";", "pipe-pane", "-t", f"={spec.session_name}:", record]
    return argv


def pane_pipe_argv(spec: ShellSpec, *, tmux: str) -> list[str]:
    """Prints 1 while the pane's output is piped to its recorder, 0 once the recorder has gone."""
    return [tmux, "-L", spec.socket_name, "display-message", "-p", "-t", f"={spec.session_name}:", "#{pane_pipe}"]


def recorder_rearm_argv(spec: ShellSpec, *, tmux: str, record: str) -> list[str]:
    """Pipe the pane into a new recorder. `-o`: only if no pipe is open, so two tabs checking at once
    never start two recorders.

    The recorder runs as the shell's user (tmux's), so the expert can kill it; the consumer checks
    every few seconds while a tab is open, restarts it and marks the gap in the recording.
    """
    return [tmux, "-L", spec.socket_name, "pipe-pane", "-o", "-t", f"={spec.session_name}:", record]


def tmux_attach_argv(spec: ShellSpec, *, tmux: str) -> list[str]:
    """The tmux client the terminal talks to (read-only and size-neutral for watchers)."""
    argv = [tmux, "-L", spec.socket_name, "attach-session", "-t", f"={spec.session_name}"]
    if spec.readonly:
        argv += ["-f", "read-only,ignore-size"]
    return argv


def record_command(python: str, script: str, spool_file: str) -> str:
    """The `pipe-pane` command (run by /bin/sh as the shell's user): the pane's output into its spool file."""
    return f"exec {python} {script} {spool_file}"


def socket_name(attempt_id: int, prefix: str | None = None) -> str:
    if prefix is None:
        from django.conf import settings

        prefix = settings.TERMINAL_TMUX_SOCKET_PREFIX
    return f"{prefix}-a{attempt_id}"


def tmux_kill_argv(attempt_id: int, *, tmux: str) -> list[str]:
    return [tmux, "-L", socket_name(attempt_id), "kill-server"]


def shell_join(argv: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in argv)


def backend_for(workstation: object) -> Backend:
    """The backend for a Workstation row (or None, which means this machine)."""
    backend = getattr(workstation, "backend", "local")
    if backend == "ssh":
        from trials.backends.ssh import SSHBackend

        return SSHBackend.for_workstation(workstation)
    from trials.backends.local import LocalBackend

    return LocalBackend()
