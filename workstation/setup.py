"""Onboarding a host: the set-up script that makes a machine a workstation, and its SSH host key recorded here.

The script (templates/setup.sh beside this module) is rendered on the server from plain values and
the settings, and runs as root on the workstation: Debian packages, the terminal holders' user, the
`protected` group, what per-attempt users need, the data folders, and the worker as a systemd unit
with its environment file: the broker's URL, the site's address and its agent token, never the
database's URL or the site's secret key (the agent has none: workstation.agent). It is idempotent:
running it again after an upgrade or a change of settings brings the host up to date.
`REBENCH_SETUP_ROOT=<folder>` runs it against a scratch root: every file goes under that folder and
the commands that change the system (apt-get, useradd, groupadd, chown to its users, systemctl) are
printed instead of run — how the tests run it.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.template import Context, Engine

from workstation import gate, users

HERE = Path(__file__).resolve().parent
UNIT_NAME = "rebench-worker.service"
ENV_FILE = gate.DEFAULT_ENV_FILE  # the gate reads the same file
# The agent's token, in a file of its own: running the script again (after an upgrade) keeps it, and
# only `REBENCH_AGENT_TOKEN=… bash setup.sh` with a newly issued one replaces it.
TOKEN_FILE = "/etc/rebench/agent-token.env"  # noqa: S105 - a path; the token is written there at run time
KEYSCAN_SECONDS = 15
# The worker's environment: what the web host runs with, for these names (and every name with these
# prefixes), so the agent's settings agree with the site's where it works: paths, the sandbox, the
# grading. Never the database's URL, the site's SECRET_KEY or REDIS_URL (the site's cache and
# channels): the agent (workstation.agent) has no use for them and must not hold them. The broker's
# URL and the site's address are written by script() on their own; the scorers' API keys are why the
# file is root's alone (0600).
WORKER_VARIABLES = (
    "DEBUG",
    "DATA_DIR",
    "MEDIA_ROOT",
    "PROTECTED_DIR",
    "LOG_LEVEL",
    "TIME_ZONE",
)
# Named by a prefix below, yet the site's alone: the web host's own agent settings.
NOT_FOR_WORKERS = ("WORKSTATION_SITE", "WORKSTATION_SITE_URL", "WORKSTATION_AGENT_TOKEN", "CELERY_BROKER_URL")
WORKER_PREFIXES = (
    "TERMINAL_",
    "SANDBOX_",
    "ENVIRONMENT_",
    "CELERY_",
    "GRADING_",
    "SCORING_",
    "WORKSTATION_",
    # The environments' LLM endpoints and models, which their scorers on the workstation use.
    "RUST_CODECONTESTS_",
    "CHAT_RL_",
    # Experts' SSH access (the keys' folder, the tunnel), which the gate applies on the workstation.
    "SSH_ACCESS_",
)
# The LLM endpoints' real keys (RUST_CODECONTESTS_API_KEY, …): the worker hands them to the scorers.
WORKER_SUFFIXES = ("_API_KEY",)
# The gate (workstation/gate.py): the one command the site's SSH key runs on an SSH workstation.
GATE_PATH = f"/usr/local/sbin/{gate.NAME}"
GATE_KEY_COMMENT = "rebench-site-gate"  # marks the key's line, so a later run replaces it
_PUBLIC_KEY = re.compile(r"^[a-z0-9@.-]+ [A-Za-z0-9+/]+={0,2}$")
_SAFE_WORD = re.compile(r"^[A-Za-z0-9._@:+-]+$")
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+@-]*$")


class SetupError(Exception):
    """The set-up can't be made or run as asked; the message says why and what to change."""


@dataclass(frozen=True)
class Host:
    """What the script needs to know of the workstation (plain values: this package reads no database)."""

    name: str
    host: str
    queue_name: str
    backend: str = "ssh"
    ssh_user: str = ""
    ssh_port: int = 22
    # Where the checkout (with its .venv) is on the workstation: the same path as here, by default.
    checkout: str = field(default_factory=lambda: str(settings.BASE_DIR))
    environment: Mapping[str, str] = field(default_factory=dict)
    # The broker login its agent consumes its queue with, and the site's address it calls.
    broker_url: str = field(default_factory=lambda: str(settings.CELERY_BROKER_URL))
    site_url: str = field(default_factory=lambda: str(settings.SITE_URL))


def worker_environment(source: Mapping[str, str]) -> dict[str, str]:
    """The variables of `source` (the web host's environment) that the workstation's worker must share."""
    chosen = {
        name: value
        for name, value in source.items()
        if (name in WORKER_VARIABLES or name.startswith(WORKER_PREFIXES) or name.endswith(WORKER_SUFFIXES))
        and name not in NOT_FOR_WORKERS
    }
    return dict(sorted(chosen.items()))


def broker_permissions(queue: str) -> tuple[str, str, str]:
    """RabbitMQ's configure, write and read permissions of a workstation's broker login: its own queue only.

    The agent declares its queue and the exchange of the same name (configure), binds them (write on
    the queue, read on the exchange) and consumes (read); it publishes nothing, takes no remote
    control and sends no events, so nothing else is needed.
    """
    own = "^" + re.escape(queue) + "$"
    return own, own, own


def site_public_key() -> str:
    """The public half of TERMINAL_SSH_KEY (the key the site logs in to workstations with), or "" if unreadable."""
    path = settings.TERMINAL_SSH_KEY
    if not path:
        return ""
    try:
        import asyncssh

        line = asyncssh.read_private_key(path).export_public_key().decode().split()
    except (OSError, ValueError, asyncssh.KeyImportError):
        return ""
    return f"{line[0]} {line[1]}"


def gate_key_line(public_key: str, gate: str = GATE_PATH) -> str:
    """The site's key's line in the gate login's authorized_keys: the gate whatever is asked, nothing else."""
    if not _PUBLIC_KEY.match(public_key):
        raise SetupError(f"{public_key[:60]!r} is not an OpenSSH public key (type, then base64)")
    return f'command="{_path("The gate", gate)}",restrict {public_key} {GATE_KEY_COMMENT}'


def _word(what: str, value: str) -> str:
    if not _SAFE_WORD.match(value):
        raise SetupError(
            f"{what} {value!r} has characters a unit file or a shell would misread; use letters, digits, . _ - @ :"
        )
    return value


def _path(what: str, value: str | Path) -> str:
    text = str(value)
    if not _SAFE_PATH.match(text):
        raise SetupError(f"{what} {text!r} must be an absolute path of letters, digits and . _ - + @ /")
    return text


def _env_line(name: str, value: str) -> str:
    """NAME="value" as systemd's EnvironmentFile reads it (double quotes, backslash escapes)."""
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        raise SetupError(f"{name!r} is not a variable name")
    if "\n" in value or "\r" in value:
        raise SetupError(f"{name} holds a line break, which an environment file can't")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
    return f'{name}="{escaped}"'


def script(host: Host) -> str:
    """The set-up script for `host`, to run as root there (`bash -s`, or saved and run)."""
    if host.backend not in {"ssh", "local"}:
        raise SetupError(f"Unknown backend {host.backend!r}: ssh or local.")
    name = _word("The name", host.name)
    queue = _word("The queue", host.queue_name)
    checkout = _path("The checkout", host.checkout.rstrip("/") or "/")
    ssh_user = _word("The SSH user", host.ssh_user) if host.backend == "ssh" and host.ssh_user else ""
    holder_user = _word("TERMINAL_TMUX_USER", settings.TERMINAL_TMUX_USER)
    local_user = _word("TERMINAL_LOCAL_USER", settings.TERMINAL_LOCAL_USER)
    prefix = _word("TERMINAL_ATTEMPT_USER_PREFIX", settings.TERMINAL_ATTEMPT_USER_PREFIX)
    folders = {
        "data": _path("DATA_DIR", settings.DATA_DIR),
        "workspaces": _path("TERMINAL_WORKSPACE_ROOT", settings.TERMINAL_WORKSPACE_ROOT),
        "terminals": _path("TERMINAL_HOLDER_DIR", settings.TERMINAL_HOLDER_DIR),
        "tools": _path("SANDBOX_TOOLS_DIR", settings.SANDBOX_TOOLS_DIR),
        "protected": _path("PROTECTED_DIR", settings.PROTECTED_DIR),
        "locks": _path("DATA_DIR", Path(settings.DATA_DIR) / "locks"),
    }
    env_lines = [_env_line(key, value) for key, value in host.environment.items()]
    env_lines.append(_env_line("CELERY_BROKER_URL", host.broker_url))
    env_lines.append(_env_line("WORKSTATION_SITE_URL", host.site_url))
    env_lines.append(_env_line("DJANGO_SETTINGS_MODULE", "rebench_site.agent_settings"))
    site_key = site_public_key() if host.backend == "ssh" else ""
    engine = Engine(dirs=[str(HERE / "templates")], autoescape=False)
    context = {
        "name": name,
        "host": _word("The host", host.host),
        "queue": queue,
        "backend": host.backend,
        "checkout": checkout,
        "holder_user": holder_user,
        "local_user": local_user,
        "attempt_users": bool(settings.TERMINAL_ATTEMPT_USERS),
        "prefix": prefix,
        "folders": folders,
        "gate_login": ssh_user or "root",
        "gate": GATE_PATH,
        "gate_key_comment": GATE_KEY_COMMENT,
        "gate_line": gate_key_line(site_key) if site_key else "",
        "unit_name": UNIT_NAME,
        "env_file": ENV_FILE,
        "token_file": TOKEN_FILE,
        "env_lines": env_lines,
        "privileged_groups": " ".join(sorted(users.PRIVILEGED_GROUPS)),
    }
    # Every value is checked above to need no quoting: nothing is escaped (HTML's escapes would break the shell).
    return engine.get_template("setup.sh").render(Context(context, autoescape=False))


def known_hosts_record(*, host: str, port: int, known_hosts: str | Path) -> list[str]:
    """Ask `host` for its SSH host keys (ssh-keyscan, from here) and add the new ones to `known_hosts`.

    Returns the keys' fingerprints (`ssh-keygen -lf`), for the admin to compare with what the
    set-up script printed on the host itself: ssh-keyscan trusts the network it asks over.
    """
    try:
        scanned = subprocess.run(  # noqa: S603 - fixed programs, the host as one argument
            ["ssh-keyscan", "-T", str(KEYSCAN_SECONDS), "-p", str(int(port)), "--", host],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=KEYSCAN_SECONDS + 5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"ssh-keyscan could not ask {host}:{port} for its host key: {exc}") from None
    keys = [line for line in scanned.stdout.splitlines() if line.strip() and not line.startswith("#")]
    if not keys:
        said = scanned.stderr.strip().splitlines()
        raise SetupError(
            f"{host}:{port} gave no SSH host key{': ' + said[-1] if said else ''}. Is sshd running and reachable?"
        )
    path = Path(known_hosts)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    present = set(path.read_text().splitlines()) if path.exists() else set()
    new = [line for line in keys if line not in present]
    if new:
        with path.open("a") as handle:
            handle.write("".join(f"{line}\n" for line in new))
    try:
        listed = subprocess.run(
            ["ssh-keygen", "-l", "-f", "-"],  # noqa: S607
            input="\n".join(keys) + "\n",
            capture_output=True,
            text=True,
            timeout=KEYSCAN_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"ssh-keygen could not list the fingerprints: {exc}") from None
    return [line for line in listed.stdout.splitlines() if line.strip()]
