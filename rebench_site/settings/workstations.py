"""Bookings and workstations, the terminal, per-attempt Unix users and the attempt sandbox."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from rebench_site.settings.api import REST_FRAMEWORK
from rebench_site.settings.core import DATA_DIR, SITE_URL
from rebench_site.settings.env import env_bool, env_int, env_list, env_str

# Domain settings.
# A workstation silent this long is offline: no bookings, and its running attempts are paused for
# the outage (their sandboxes stop there at the same moment: the lease on the server's word).
WORKSTATION_OFFLINE_AFTER = timedelta(seconds=env_int("WORKSTATION_OFFLINE_AFTER_SECONDS", 120))
# Silent this long (two heartbeats missed), the attempt page says its workstation isn't answering.
WORKSTATION_SILENT_AFTER = timedelta(seconds=env_int("WORKSTATION_SILENT_AFTER_SECONDS", 65))
RESERVATION_SETUP_TIME = timedelta(minutes=env_int("RESERVATION_SETUP_MINUTES", 30))
# Breaks stretch an attempt past its time limit, so a slot may be longer than the minimum; this
# bounds it, so no one blocks a workstation for days.
RESERVATION_MAX_LENGTH = timedelta(hours=env_int("RESERVATION_MAX_HOURS", 24))
# An attempt that ends before its slot does (submitted early, ended by an admin) gives the rest of the
# slot back this long after its end: room for its final scoring, then the GPUs and hours are bookable.
RESERVATION_RELEASE_MARGIN = timedelta(minutes=env_int("RESERVATION_RELEASE_MARGIN_MINUTES", 30))
# How early before the reservation's start an expert may start the attempt.
ATTEMPT_EARLY_START = timedelta(minutes=env_int("ATTEMPT_EARLY_START_MINUTES", 0))
BOOKING_HORIZON_DAYS = env_int("BOOKING_HORIZON_DAYS", 60)
LOCAL_WORKSTATION_QUEUE = env_str("LOCAL_WORKSTATION_QUEUE", "ws.local")
# What the demo's `local` workstation declares: this machine may have no GPU at all, so the
# default says plainly that the GPUs are simulated.
LOCAL_WORKSTATION_GPU_COUNT = env_int("LOCAL_WORKSTATION_GPU_COUNT", 8)
LOCAL_WORKSTATION_GPU_MODEL = env_str("LOCAL_WORKSTATION_GPU_MODEL", "H100 (simulated: demo on this machine)")
# How a workstation queue's tasks reach the site (workstation.agent.site): on the web host, its
# services in-process; a workstation host's agent (rebench_site.agent_settings) sets the HTTP client,
# the site's address and its workstation's token, and has no database at all.
WORKSTATION_SITE = env_str("WORKSTATION_SITE", "graders.agent_site.InProcessSite")
WORKSTATION_SITE_URL = env_str("WORKSTATION_SITE_URL", "")
WORKSTATION_AGENT_TOKEN = env_str("WORKSTATION_AGENT_TOKEN", "")

# --- Terminal ---
# The `task` command in the shell authenticates with a per-attempt token, valid only under
# /api/attempts/<its attempt>/ and only while that attempt runs.
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
    *REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"],
    "trials.authentication.AttemptTokenAuthentication",
]
# Where local shells start: one directory per attempt, kept after the attempt for scoring.
TERMINAL_WORKSPACE_ROOT = Path(env_str("TERMINAL_WORKSPACE_ROOT", str(DATA_DIR / "workspaces")))
# When the server runs as root, local shells run as this unprivileged user (created if missing).
TERMINAL_LOCAL_USER = env_str("TERMINAL_LOCAL_USER", "rebench-expert")
# Who runs every attempt's terminal holders (each terminal's PTY, outside the sandbox, and its
# recording) when the server is root (created if missing): not an attempt's user, so no expert can
# stop, trace or read what holds and records their terminal. The name is older than the holders.
TERMINAL_TMUX_USER = env_str("TERMINAL_TMUX_USER", "rebench-tmux")
TERMINAL_SHELL = env_str("TERMINAL_SHELL", "/bin/bash")
# An attempt is named <prefix>-a<attempt id> on a host (its terminals' folder, cgroup and sandbox
# state); two sites on one machine need two prefixes.
TERMINAL_TMUX_SOCKET_PREFIX = env_str("TERMINAL_TMUX_SOCKET_PREFIX", "rebench")
# The terminal holders' sockets, one folder per attempt (the terminal user's alone).
TERMINAL_HOLDER_DIR = Path(env_str("TERMINAL_HOLDER_DIR", str(DATA_DIR / "terminals")))
# A tab that attaches to a running terminal is sent the screen as the last this-many bytes of its
# output (from their first whole line): the scrollback it gets back, drawn by its own xterm.js.
TERMINAL_REPLAY_BYTES = env_int("TERMINAL_REPLAY_BYTES", 1024 * 1024)
# Recordings (asciicast v2) live under MEDIA_ROOT/<this>; flushed at least this often.
TERMINAL_RECORDING_DIR = env_str("TERMINAL_RECORDING_DIR", "recordings")
TERMINAL_RECORDING_FLUSH_SECONDS = float(env_int("TERMINAL_RECORDING_FLUSH_SECONDS", 2))
# Recordings are spooled on this machine's disk as they happen, uploaded to the Django storage
# alias below in closed chunks every UPLOAD seconds, and merged into one .cast when the attempt ends.
TERMINAL_RECORDING_SPOOL = Path(env_str("TERMINAL_RECORDING_SPOOL", str(DATA_DIR / "recording-spool")))
TERMINAL_RECORDING_STORAGE = env_str("TERMINAL_RECORDING_STORAGE", "default")
TERMINAL_RECORDING_UPLOAD_SECONDS = float(env_int("TERMINAL_RECORDING_UPLOAD_SECONDS", 30))
# Flow control: stop reading the shell above HIGH unacknowledged bytes, resume below LOW.
TERMINAL_HIGH_WATER = env_int("TERMINAL_HIGH_WATER", 256 * 1024)
TERMINAL_LOW_WATER = env_int("TERMINAL_LOW_WATER", 64 * 1024)
# Output nobody typed for (a flood, `cat` of a large file) is paced: after PACE_FRAMES frames within
# one PACE_INTERVAL the server waits for the interval's end before reading the holder again, then
# sends all that waited as one frame: the browser draws a flood in a few large frames instead of
# thousands of small ones (the pump in trials/terminal_bridge.py), while the holder goes on reading the
# shell into its buffer. The first frame after a keystroke (its echo) is never held back. An
# interval of 0 turns pacing off.
TERMINAL_PACE_FRAMES = env_int("TERMINAL_PACE_FRAMES", 4)
TERMINAL_PACE_INTERVAL_MS = env_int("TERMINAL_PACE_INTERVAL_MS", 16)
TERMINAL_MAX_INPUT_BYTES = env_int("TERMINAL_MAX_INPUT_BYTES", 64 * 1024)
TERMINAL_MAX_TABS = env_int("TERMINAL_MAX_TABS", 8)
# SSH workstations: the server's key and the known_hosts file it checks host keys against.
TERMINAL_SSH_KEY = env_str("TERMINAL_SSH_KEY", "")
TERMINAL_SSH_KNOWN_HOSTS = env_str("TERMINAL_SSH_KNOWN_HOSTS", str(Path.home() / ".ssh" / "known_hosts"))
TERMINAL_SSH_KEEPALIVE_SECONDS = env_int("TERMINAL_SSH_KEEPALIVE_SECONDS", 15)
TERMINAL_SSH_CONNECT_TIMEOUT_SECONDS = env_int("TERMINAL_SSH_CONNECT_TIMEOUT_SECONDS", 10)
# The URL the `task` command in the shell reaches the API at (the shell may see the site differently).
TERMINAL_API_URL = env_str("TERMINAL_API_URL", SITE_URL.rstrip("/") + "/api")

# --- Per-attempt Unix users ---
# When the server and worker run as root, each attempt's shells and scorers run as its own user
# <prefix><attempt id> (created when the workspace is prepared, expired once the final score is in),
# so one attempt can't read another's workspace. Off: every attempt shares TERMINAL_LOCAL_USER.
TERMINAL_ATTEMPT_USERS = env_bool("TERMINAL_ATTEMPT_USERS", True)
TERMINAL_ATTEMPT_USER_PREFIX = env_str("TERMINAL_ATTEMPT_USER_PREFIX", "rb-a")

# --- The attempt sandbox ---
# Each attempt's shells, and every run of its code by a scorer, live in one sandbox on the
# workstation: bubblewrap namespaces (mount, PID, IPC, network, user), the attempt's own user, and a
# cgroup with its share of the machine, frozen during pauses and at the deadline by a keeper process
# on the workstation itself. A workstation that can't sandbox can't be booked, unless this is set:
# then attempts run with whatever isolation the machine has, and the admin pages say so in red.
SANDBOX_ALLOW_UNSAFE = env_bool("SANDBOX_ALLOW_UNSAFE", False)
SANDBOX_BWRAP = env_str("SANDBOX_BWRAP", "bwrap")
# Per-attempt folders of the keepers (root's): policy, control, sockets; and the tools the sandbox runs.
SANDBOX_STATE_DIR = Path(env_str("SANDBOX_STATE_DIR", str(DATA_DIR / "sandboxes")))
SANDBOX_TOOLS_DIR = Path(env_str("SANDBOX_TOOLS_DIR", str(DATA_DIR / "sandbox-tools")))
# cgroups: "auto" takes v2 where it holds the controllers, else v1. Sandboxes are made under
# <hierarchy>/<parent>/<name>, on every workstation (an SSH one's gate runs as root there).
SANDBOX_CGROUP_VERSION = env_str("SANDBOX_CGROUP_VERSION", "auto")
SANDBOX_CGROUP_ROOT = env_str("SANDBOX_CGROUP_ROOT", "")
SANDBOX_CGROUP_PARENT = env_str("SANDBOX_CGROUP_PARENT", "rebench")
# Processes (and threads) one attempt may have at once; memory is its GPUs' share of the host, at
# most what its environment declares, and at most this when set (GB, 0: no further cap).
SANDBOX_PIDS_MAX = env_int("SANDBOX_PIDS_MAX", 8192)
SANDBOX_MEMORY_GB = float(env_str("SANDBOX_MEMORY_GB", "0") or 0)
# Where the GPUs' device nodes are (/dev/nvidia<N>, nvidiactl, nvidia-uvm).
SANDBOX_DEV_DIR = env_str("SANDBOX_DEV_DIR", "/dev")
# The python3 inside the sandbox, and whether it gets this server's packages (torch, triton) read-only.
SANDBOX_PYTHON = env_str("SANDBOX_PYTHON", "/usr/bin/python3")
SANDBOX_SHARE_PYTHON_PACKAGES = env_bool("SANDBOX_SHARE_PYTHON_PACKAGES", True)
# More read-only folders in every sandbox: "outside:inside,outside:inside" (a CUDA toolkit, datasets).
SANDBOX_RO_BINDS = [
    tuple(item.split(":", 1)) if ":" in item else (item, item) for item in env_list("SANDBOX_RO_BINDS", [])
]
# Breaks freeze the attempt's processes; with this on, work started before a break goes on during it.
SANDBOX_BREAK_BACKGROUND_WORK = env_bool("SANDBOX_BREAK_BACKGROUND_WORK", False)
# Environments' proxies reachable from their sandboxes: {"slug": [[port, "/path/of/unix.sock"], ...]}
# (the sandbox sees 127.0.0.1:<port>; nothing else of the network).
SANDBOX_ENVIRONMENT_BRIDGES: dict[str, list[list[int | str]]] = json.loads(env_str("SANDBOX_ENVIRONMENT_BRIDGES", "{}"))
# Where the shell reaches its environment's model (an environment with `expert_model_key`): this port on
# the sandbox's own loopback, bridged to the attempt's API relay (OPENAI_BASE_URL says so in the shell).
SANDBOX_MODEL_PORT = env_int("SANDBOX_MODEL_PORT", 8642)

# --- Experts' SSH access to their attempts ---
# Where the workstation writes each attempt's authorized keys (root's; sshd's drop-in names it: see
# `manage.py ssh_access_config`). The attempt page shows `ssh <user>@SSH_ACCESS_HOST -p SSH_ACCESS_PORT`
# (empty host: the workstation's own), with SSH_ACCESS_PROXY_JUMP (`user@bastion`) as a ProxyJump.
SSH_ACCESS_KEYS_DIR = Path(env_str("SSH_ACCESS_KEYS_DIR", "/etc/rebench/ssh/authorized"))
SSH_ACCESS_HOST = env_str("SSH_ACCESS_HOST", "")
SSH_ACCESS_PORT = env_int("SSH_ACCESS_PORT", 22)
SSH_ACCESS_PROXY_JUMP = env_str("SSH_ACCESS_PROXY_JUMP", "")
# Keys an expert may register on their account; SSH sessions open at once on one attempt.
SSH_ACCESS_MAX_KEYS = env_int("SSH_ACCESS_MAX_KEYS", 10)
SSH_ACCESS_MAX_SESSIONS = env_int("SSH_ACCESS_MAX_SESSIONS", 16)
# The tunnel (`ssh <login>@<host> rebench-tunnel` as a ProxyCommand): a second SSH hop served by an
# OpenSSH sshd started *inside* the attempt's sandbox, whose port forwarding (VS Code Remote-SSH's)
# reaches only what the sandbox's shell reaches. SSH_ACCESS_SSHD is that sshd's path on the workstation.
SSH_ACCESS_TUNNEL = env_bool("SSH_ACCESS_TUNNEL", True)
SSH_ACCESS_SSHD = env_str("SSH_ACCESS_SSHD", "/usr/sbin/sshd")
# Files on the attempt page: the largest upload into the workspace, and the largest download (a file,
# or a folder as a tar.gz), in MB.
ATTEMPT_UPLOAD_MAX_MB = env_int("ATTEMPT_UPLOAD_MAX_MB", 100)
ATTEMPT_DOWNLOAD_MAX_MB = env_int("ATTEMPT_DOWNLOAD_MAX_MB", 500)
