"""One sandbox per attempt: bubblewrap namespaces and a cgroup, started and frozen on the workstation itself.

Standard library only, no Django: it is imported by the web host, the agent and an SSH
workstation's gate, and the keeper daemon runs it with the system's python3 (`python -m
workstation.sandbox daemon`). What a sandbox is, is a `Policy` (plain data, JSON on disk); what runs it:

- the **keeper** (keeper.py): one daemon per attempt, outside the sandbox, as root. It makes the
  attempt's cgroup, keeps the sandbox's first process (the spawner) running, relays the `task`
  command's API calls, and freezes the sandbox whenever the last control the server sent says so —
  a pause, or a deadline that has passed — with or without the server, the broker or the worker.
- the **spawner** (spawner.py): inside, as the attempt's user; starts each terminal's shell on the
  terminal its holder (outside) passes it.
- **instances**: `launch()` starts one more sandbox of the same policy for a command (a scorer's
  harness, copying files into the workspace), in its own cgroup under the attempt's.

Folders: `state_dir` (outside, root's) holds the policy, the control and status files, the spawner's
socket and `run/` (bound read-only at /run/rebench: the API relay's socket). The workspace is
bound at /home/agent; `tools_dir` at /opt/rebench/bin.

The code, by subject: policy.py (the paths inside, the file names, `Policy`), bwrap.py (the bubblewrap
command line and whether this machine can sandbox), instances.py (`launch`), state.py (the state
folder's files, sockets and locks), lifecycle.py (`ensure`, `control`, `status`, `stop`) and
cgroups.py (an attempt's share of the machine; cgroups_common.py, cgroups_v1.py and cgroups_v2.py
behind it); this package re-exports each name (`from workstation.sandbox import Policy`, keeper.py's
`from . import …`). Every module here travels to SSH workstations (backends/ssh.py copies the package's *.py).
"""

from __future__ import annotations

from . import cgroups
from .bwrap import (
    bwrap_argv,
    bwrap_supports,
    hierarchy_for,
    preexec,
    problems,
)
from .instances import (
    Instance,
    launch,
    prepare_cgroup,
)
from .lifecycle import (
    control,
    enforce,
    ensure,
    frozen_reason,
    main_daemon,
    next_change,
    set_token,
    status,
    stop,
    wait_ready,
)
from .policy import (
    API_SOCKET,
    CONTROL_FILE,
    GPU_SHARED_NODES,
    HOME,
    KEEPER_PID,
    LOCK_SECONDS,
    NVIDIA_MAJOR,
    POLICY_FILE,
    READY_SECONDS,
    RUN,
    SPAWN_SOCKET,
    SPAWNER,
    STATUS_FILE,
    TOKEN_FILE,
    TOOLS,
    WORK,
    Policy,
    SandboxError,
)
from .state import (
    keeper_pid,
    locked,
    read_json,
    unix_address,
    unix_path,
    write_file,
)

__all__ = [
    "API_SOCKET",
    "CONTROL_FILE",
    "GPU_SHARED_NODES",
    "HOME",
    "KEEPER_PID",
    "LOCK_SECONDS",
    "NVIDIA_MAJOR",
    "POLICY_FILE",
    "READY_SECONDS",
    "RUN",
    "SPAWNER",
    "SPAWN_SOCKET",
    "STATUS_FILE",
    "TOKEN_FILE",
    "TOOLS",
    "WORK",
    "Instance",
    "Policy",
    "SandboxError",
    "bwrap_argv",
    "bwrap_supports",
    "cgroups",
    "control",
    "enforce",
    "ensure",
    "frozen_reason",
    "hierarchy_for",
    "keeper_pid",
    "launch",
    "locked",
    "main_daemon",
    "next_change",
    "preexec",
    "prepare_cgroup",
    "problems",
    "read_json",
    "set_token",
    "status",
    "stop",
    "unix_address",
    "unix_path",
    "wait_ready",
    "write_file",
]
