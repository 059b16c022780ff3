"""What a sandbox is: its fixed paths and file names, and the `Policy` (plain data, JSON on disk)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from . import cgroups
from .cgroups import Limits  # by name: the field `cgroups` below hides the module in the class

HOME = "/home/agent"
TOOLS = "/opt/rebench/bin"
RUN = "/run/rebench"
SPAWNER = "spawner.py"
POLICY_FILE = "policy.json"
CONTROL_FILE = "control.json"
CONTROL_LOCK = ".control-lock"  # held while the control file is read and applied (lifecycle.enforce)
STATUS_FILE = "status.json"
KEEPER_PID = "keeper.pid"
TOKEN_FILE = "token"  # noqa: S105 - the file's name, not a secret
SPAWN_SOCKET = "spawn.sock"
API_SOCKET = "api.sock"
WORK = "work"
LOCK_SECONDS = 30.0
READY_SECONDS = 15.0
GPU_SHARED_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")
NVIDIA_MAJOR = 195


class SandboxError(Exception):
    """The sandbox can't be made or used here; the message says what to fix."""


@dataclass
class Policy:
    """Everything the workstation needs to build and police one attempt's sandbox (JSON-able)."""

    name: str  # the cgroup's and the state folder's name, unique on the host
    attempt_id: int
    state_dir: str
    workspace: str
    tools_dir: str
    uid: int
    gid: int
    # Who may connect to the spawner (the terminal user's group; -1: the keeper's own user only) and who runs
    # the API relay (-1: the keeper's user).
    connector_gid: int = -1
    relay_uid: int = -1
    relay_gid: int = -1
    isolate: bool = True  # bubblewrap; off only where the admin allowed running without it
    bwrap: str = "bwrap"
    disable_userns: bool = True
    cgroups: bool = True
    cgroup_version: str = "auto"
    cgroup_root: str = ""
    cgroup_parent: str = "rebench"
    memory_bytes: int = 0
    pids_max: int = 0
    cpus: list[int] = field(default_factory=list)
    cpu_quota: float = 0.0
    gpus: list[int] = field(default_factory=list)
    gpu_uuids: list[str] = field(default_factory=list)
    dev_dir: str = "/dev"
    network: str = "none"  # "host": the Task Standard's full_internet permission
    # (port on the sandbox's loopback, Unix socket outside): an environment's proxy or judge.
    bridges: list[list[Any]] = field(default_factory=list)
    # The environment's model, reached from 127.0.0.1:model_port through the attempt's API relay (0: none).
    model_port: int = 0
    ro_binds: list[list[str]] = field(default_factory=list)  # (outside, inside)
    python: str = "/usr/bin/python3"
    shell: str = "/bin/bash"
    env: dict[str, str] = field(default_factory=dict)
    api_url: str = ""  # where the relay sends `task`'s calls
    api_prefix: str = ""  # the only paths it lets through
    hostname: str = "rebench"
    ssh_max_sessions: int = 16  # SSH sessions open at once (each interactive one is a holder outside the cgroup)
    # The attempt user's home in the host's passwd: inside, a link to HOME (what sshd and `~user` look for).
    login_home: str = ""
    # The tunnel: the attempt's authorized keys file (root's, on the host), whether it is offered, and the sshd
    # the sandbox runs for it.
    ssh_keys_file: str = ""
    ssh_tunnel: bool = False
    sshd: str = "/usr/sbin/sshd"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Policy:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def resolved(self) -> Policy:
        """On the host itself: `~` in paths expanded, -1 ids (the relay's, by default) made this process's."""
        data = asdict(self)
        for key in ("state_dir", "workspace", "tools_dir"):
            data[key] = os.path.expanduser(data[key])
        for key, value in (
            ("uid", os.getuid()),
            ("gid", os.getgid()),
            ("relay_uid", os.getuid()),
            ("relay_gid", os.getgid()),
        ):
            if data[key] == -1:
                data[key] = value
        data["bridges"] = [[port, os.path.expanduser(path)] for port, path in data["bridges"]]
        return Policy.from_json(data)

    def cgroup(self, child: str = "") -> str:
        base = f"{self.cgroup_parent.strip('/')}/{self.name}"
        return f"{base}/{child}" if child else base

    def limits(self) -> Limits:
        devices = [("c", NVIDIA_MAJOR, index) for index in self.gpus]
        for node in GPU_SHARED_NODES:
            with contextlib.suppress(OSError):
                info = os.stat(os.path.join(self.dev_dir, node))
                devices.append(("c", os.major(info.st_rdev), os.minor(info.st_rdev)))
        return cgroups.Limits(
            memory_bytes=self.memory_bytes or None,
            pids_max=self.pids_max or None,
            cpus=tuple(self.cpus),
            cpu_quota=self.cpu_quota or None,
            devices=tuple(devices),
        )

    def environment(self) -> dict[str, str]:
        """What every process in the sandbox starts with (a shell adds TERM and its terminal's number)."""
        env = {
            "HOME": HOME,
            "USER": "agent",
            "LOGNAME": "agent",
            "SHELL": self.shell,
            "PATH": f"{TOOLS}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TMPDIR": "/tmp",  # noqa: S108 - the sandbox's own private tmpfs
            "REBENCH_ATTEMPT_ID": str(self.attempt_id),
            "REBENCH_API_SOCKET": f"{RUN}/{API_SOCKET}",
            "REBENCH_SPAWNER_SHELL": self.shell,
        }
        if self.model_port and self.isolate:  # unsandboxed, the port would be the host's: no model then
            # The relay signs each request with the attempt's own token: this key is a placeholder
            # that OpenAI's clients insist on, not a secret.
            env["OPENAI_BASE_URL"] = f"http://127.0.0.1:{self.model_port}{self.api_prefix}model/v1"
            env["OPENAI_API_KEY"] = "attempt"
        env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpu_uuids or [str(i) for i in self.gpus]) if self.gpus else ""
        if self.gpus and not self.gpu_uuids:
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # indices as nvidia-smi numbers them
        env.update(self.env)
        return env
