"""tmux command lines for an attempt's terminals: one tmux server per attempt, outside its sandbox.

The tmux server runs as the tmux user; each pane runs the spawner's `attach` client, which hands
the pane's terminal to a shell inside the sandbox. So the expert's shell has the terminal but not
tmux: it can't kill, re-pipe or read the server, and the recorder tmux feeds is out of its reach.
"""

from __future__ import annotations

import shlex

# tmux options: no status line (the page has tabs), no mouse mode (so the browser's selection and
# copy/paste work), a long history, the window follows the most recent client's size, and no wait
# after ESC: our keystrokes arrive whole in one write, so waiting only delays Esc for vim users.
TMUX_OPTIONS = [
    ("status", "off"),
    ("mouse", "off"),
    ("history-limit", "50000"),
    ("window-size", "latest"),
    ("escape-time", "0"),
    # The pane's command is our attach client; an exited shell ends its session (the terminal
    # starts a fresh one), and tmux never keeps a dead pane around.
    ("remain-on-exit", "off"),
    # tmux runs pane and pipe-pane commands with its user's shell; the tmux user has none to log in with.
    ("default-shell", "/bin/sh"),
]


def session_name(attempt_id: int, number: int) -> str:
    return f"attempt-{attempt_id}-terminal-{number}"


def target(session: str) -> str:
    return f"={session}:"


def create_argv(
    *, tmux: str, socket: str, session: str, cols: int, rows: int, pane_command: str, cwd: str, record: str | None
) -> list[str]:
    """Create the session, detached, and start its recorder; exits 1 ("duplicate session") if it exists.

    tmux skips the rest of a command list after a failed command, so the recorder is piped only into
    a new session: exactly one recorder per pane, however many tabs attach. `-f /dev/null`: no
    configuration file is read, whoever's home it would come from.
    """
    argv = [tmux, "-f", "/dev/null", "-L", socket, "start-server"]
    for name, value in [*TMUX_OPTIONS, ("default-command", pane_command)]:
        argv += [";", "set-option", "-g", name, value]
    argv += [";", "new-session", "-d", "-s", session, "-c", cwd, "-x", str(cols), "-y", str(rows), pane_command]
    if record:
        argv += [";", "pipe-pane", "-t", target(session), record]
    return argv


def has_session_argv(*, tmux: str, socket: str, session: str) -> list[str]:
    return [tmux, "-L", socket, "has-session", "-t", f"={session}"]


def pane_pipe_argv(*, tmux: str, socket: str, session: str) -> list[str]:
    """Prints 1 while the pane's output is piped to its recorder, 0 once the recorder has gone."""
    return [tmux, "-L", socket, "display-message", "-p", "-t", target(session), "#{pane_pipe}"]


def recorder_rearm_argv(*, tmux: str, socket: str, session: str, record: str) -> list[str]:
    """Pipe the pane into a new recorder. `-o`: only if no pipe is open, so two tabs checking at once
    never start two recorders (the recorder runs as the tmux user; nothing in the sandbox can stop it,
    but it can still crash)."""
    return [tmux, "-L", socket, "pipe-pane", "-o", "-t", target(session), record]


def attach_argv(*, tmux: str, socket: str, session: str, readonly: bool) -> list[str]:
    """The tmux client the terminal talks to (read-only and size-neutral for watchers)."""
    argv = [tmux, "-L", socket, "attach-session", "-t", f"={session}"]
    if readonly:
        argv += ["-f", "read-only,ignore-size"]
    return argv


def kill_argv(*, tmux: str, socket: str) -> list[str]:
    return [tmux, "-L", socket, "kill-server"]


def record_command(python: str, script: str, spool_file: str) -> str:
    """The `pipe-pane` command (run by /bin/sh as the tmux user): the pane's output into its spool file."""
    return "exec " + shell_join([python, script, spool_file])


def attach_command(python: str, spawner: str, spawn_socket: str, number: int) -> str:
    """What each pane runs: hand the pane's terminal to a shell in the attempt's sandbox."""
    # -I -S: no site packages, no environment variables: every new tab waits for this start-up.
    return "exec " + shell_join([python, "-I", "-S", spawner, "attach", spawn_socket, str(int(number))])


def shell_join(argv: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in argv)
