"""One sandbox per attempt: bubblewrap namespaces and a cgroup, started and frozen on the workstation itself.

Standard library only, no Django: the same package runs on this machine (imported, and as the
keeper daemon `python -m workstation.sandbox keeper`) and on SSH workstations (copied there as
`rebench_sandbox`). What a sandbox is, is a `Policy` (plain data, JSON on disk); what runs it:

- the **keeper** (keeper.py): one daemon per attempt, outside the sandbox, as root locally (the SSH
  user on an SSH workstation). It makes the attempt's cgroup, keeps the sandbox's first process
  (the spawner) running, relays the `task` command's API calls, and freezes the sandbox whenever
  the last control the server sent says so — a pause, or a deadline that has passed — with or
  without the server, the broker or the worker.
- the **spawner** (spawner.py): inside, as the attempt's user; starts each terminal's shell on the
  terminal tmux (outside) passes it.
- **instances**: `launch()` starts one more sandbox of the same policy for a command (a scorer's
  harness, copying files into the workspace), in its own cgroup under the attempt's.

Folders: `state_dir` (outside, root's) holds the policy, the control and status files, the spawner's
socket and `run/` (bound read-only at /run/rebench: the API relay's socket). The workspace is
bound at /home/agent; `tools_dir` at /opt/rebench/bin.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from . import cgroups

HOME = "/home/agent"
TOOLS = "/opt/rebench/bin"
RUN = "/run/rebench"
SPAWNER = "spawner.py"
POLICY_FILE = "policy.json"
CONTROL_FILE = "control.json"
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
    # Who may connect to the spawner (tmux's group; -1: the keeper's own user only) and who runs
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
    ro_binds: list[list[str]] = field(default_factory=list)  # (outside, inside)
    python: str = "/usr/bin/python3"
    shell: str = "/bin/bash"
    env: dict[str, str] = field(default_factory=dict)
    api_url: str = ""  # where the relay sends `task`'s calls
    api_prefix: str = ""  # the only paths it lets through
    hostname: str = "rebench"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Policy:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def resolved(self) -> Policy:
        """On the host itself: `~` in paths expanded, -1 ids made this process's (an SSH workstation's policy)."""
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

    def limits(self) -> cgroups.Limits:
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
        env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpu_uuids or [str(i) for i in self.gpus]) if self.gpus else ""
        if self.gpus and not self.gpu_uuids:
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # indices as nvidia-smi numbers them
        env.update(self.env)
        return env


# --- bubblewrap ------------------------------------------------------------------------------------


def _system_binds() -> list[str]:
    """The host's system read-only: /usr and /etc, and the top-level links or folders of a merged /usr."""
    argv = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = f"/{top}"
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    return argv


def bwrap_argv(
    policy: Policy,
    command: list[str],
    *,
    workspace_readonly: bool = False,
    ro_binds: list[tuple[str, str]] = (),  # type: ignore[assignment]
    rw_binds: list[tuple[str, str]] = (),  # type: ignore[assignment]
    die_with_parent: bool = True,
    new_session: bool = True,
    api: bool = False,
) -> list[str]:
    """The bubblewrap command line of one sandbox instance of `policy` running `command`."""
    argv = [policy.bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    argv += ["--unshare-cgroup-try"]
    if policy.network != "host":
        argv += ["--unshare-net"]
    if policy.disable_userns:
        argv += ["--disable-userns"]
    if die_with_parent:
        argv += ["--die-with-parent"]
    if new_session:
        argv += ["--new-session"]  # no TIOCSTI into whoever started us
    argv += ["--hostname", policy.hostname]
    argv += _system_binds()
    # A private /tmp, /run and /opt of its own (tmpfs): nothing of the host's.
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run", "--tmpfs", "/opt"]  # noqa: S108
    if os.path.isdir("/sys"):
        # sysfs for tools that read the hardware (CUDA, nproc); never the cgroup tree.
        argv += ["--ro-bind", "/sys", "/sys", "--tmpfs", "/sys/fs/cgroup"]
    for index in policy.gpus:
        # -try: a GPU the host doesn't have (a demo's simulated one) is simply absent inside.
        argv += ["--dev-bind-try", os.path.join(policy.dev_dir, f"nvidia{index}"), f"/dev/nvidia{index}"]
    if policy.gpus:
        for node in GPU_SHARED_NODES:
            argv += ["--dev-bind-try", os.path.join(policy.dev_dir, node), f"/dev/{node}"]
    argv += ["--ro-bind" if workspace_readonly else "--bind", policy.workspace, HOME]
    argv += ["--ro-bind", policy.tools_dir, TOOLS]
    if api:  # the relay's socket: the terminal's sandbox has it, scorers' instances don't
        argv += ["--ro-bind", os.path.join(policy.state_dir, "run"), RUN]
    for outside, inside in [*policy.ro_binds, *ro_binds]:
        argv += ["--ro-bind", outside, inside]
    for outside, inside in rw_binds:
        argv += ["--bind", outside, inside]
    argv += ["--chdir", HOME, "--"]
    return argv + command


def _drop_to(uid: int, gid: int, groups: list[int]) -> None:
    if os.geteuid() == 0:
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)


def preexec(policy: Policy, cgroup: str | None, groups: list[int] | None = None) -> Callable[[], None]:
    """Between fork and exec: into the cgroup (as root, before the drop), then the attempt's user."""
    hierarchy = hierarchy_for(policy) if cgroup else None

    def setup() -> None:
        os.setsid()
        if hierarchy is not None and cgroup:
            hierarchy.add(cgroup, os.getpid())
        _drop_to(policy.uid, policy.gid, groups if groups is not None else [policy.gid])

    return setup


def hierarchy_for(policy: Policy) -> cgroups.Hierarchy | None:
    if not policy.cgroups:
        return None
    found = cgroups.detect(policy.cgroup_version, policy.cgroup_root)
    if found is None:
        raise SandboxError("No cgroup hierarchy is mounted on this machine: the sandbox can't cap or freeze.")
    return found


# --- one more instance of the sandbox: scorers' harnesses, copies into the workspace -----------------


@dataclass
class Instance:
    """A command running in a fresh sandbox of the attempt's policy, in the cgroup `<attempt>/<name>`."""

    policy: Policy
    name: str
    process: subprocess.Popen[bytes]
    hierarchy: cgroups.Hierarchy | None

    def kill(self) -> None:
        """The whole instance: everything it started, however it detached."""
        if self.hierarchy is not None:
            self.hierarchy.kill(self.policy.cgroup(self.name))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def oom_killed(self) -> bool:
        return self.hierarchy is not None and self.hierarchy.oom_kills(self.policy.cgroup(self.name)) > 0

    def close(self) -> None:
        self.kill()
        self.process.wait()
        if self.hierarchy is not None:
            with contextlib.suppress(OSError, cgroups.CgroupError):
                self.hierarchy.remove(self.policy.cgroup(self.name))


def prepare_cgroup(hierarchy: cgroups.Hierarchy, policy: Policy) -> None:
    """The attempt's cgroup with its caps, under a parent that weighs as much as the host's cores."""
    hierarchy.create(policy.cgroup(), policy.limits())
    hierarchy.weigh(policy.cgroup_parent, os.cpu_count() or 1)


def launch(
    policy: Policy,
    name: str,
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    groups: list[int] | None = None,
    memory_bytes: int | None = None,
    workspace_readonly: bool = False,
    ro_binds: list[tuple[str, str]] = (),  # type: ignore[assignment]
    rw_binds: list[tuple[str, str]] = (),  # type: ignore[assignment]
    **popen: Any,
) -> Instance:
    """Start `command` in a new sandbox instance; the caller reads its pipes and closes it."""
    hierarchy = hierarchy_for(policy)
    cgroup = policy.cgroup(name) if hierarchy is not None else None
    if hierarchy is not None and cgroup is not None:
        prepare_cgroup(hierarchy, policy)
        hierarchy.create(cgroup, cgroups.Limits(memory_bytes=memory_bytes) if memory_bytes else None)
        if hierarchy.is_frozen(cgroup):
            hierarchy.set_frozen(cgroup, False)
    if policy.isolate:
        argv = bwrap_argv(policy, command, workspace_readonly=workspace_readonly, ro_binds=ro_binds, rw_binds=rw_binds)
    else:
        argv = command
    process = subprocess.Popen(  # noqa: S603 - bubblewrap with the argv built above
        argv,
        env={**policy.environment(), **(env or {})},
        cwd=policy.workspace if not policy.isolate else "/",
        preexec_fn=preexec(policy, cgroup, groups),
        close_fds=True,
        **popen,
    )
    return Instance(policy, name, process, hierarchy)


# --- the attempt's long-lived sandbox: start, control, stop ---------------------------------------


def _private_dir(path: str, mode: int = 0o711) -> None:
    os.makedirs(path, exist_ok=True)
    info = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path):
        raise SandboxError(f"{path} is not a folder")
    if os.geteuid() == 0 and info.st_uid != 0:
        os.chown(path, 0, 0, follow_symlinks=False)
    os.chmod(path, mode)


def unix_address(path: str, directory_fd: int) -> str:
    """An address for `path` that fits a Unix socket's 107 bytes however deep the data folder is: the
    socket's name under `/proc/self/fd/N`, N an open descriptor of its folder."""
    if len(os.fsencode(path)) <= 100:
        return path
    return f"/proc/self/fd/{directory_fd}/{os.path.basename(path)}"


@contextlib.contextmanager
def unix_path(path: str) -> Iterator[str]:
    """unix_address(path) with its folder held open for as long as the address is in use (bind, connect)."""
    fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY)
    try:
        yield unix_address(path, fd)
    finally:
        os.close(fd)


def write_file(directory: str, name: str, data: bytes, *, mode: int = 0o600, uid: int = -1, gid: int = -1) -> None:
    """Replace `directory/name` atomically, never following a link (the folder is ours, the name fixed)."""
    fd_dir = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        temporary = f".{name}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=fd_dir)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=fd_dir)
        try:
            os.write(fd, data)
            os.fchmod(fd, mode)
            if os.geteuid() == 0 and (uid != -1 or gid != -1):
                os.fchown(fd, uid, gid)
        finally:
            os.close(fd)
        os.rename(temporary, name, src_dir_fd=fd_dir, dst_dir_fd=fd_dir)
    finally:
        os.close(fd_dir)


def read_json(path: str) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError), open(path) as handle:
        data = json.load(handle)
        return data if isinstance(data, dict) else {}
    return {}


@contextlib.contextmanager
def locked(path: str, *, timeout: float) -> Iterator[None]:
    """An exclusive lock on `path` (a file in a folder of ours), waited for at most `timeout` s: TimeoutError after."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another process has held {path} for {timeout:g} s") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(state_dir: str, timeout: float = LOCK_SECONDS) -> Iterator[None]:
    """One starter at a time per attempt (the web server and the worker may both start it); never forever."""
    try:
        with locked(os.path.join(state_dir, ".lock"), timeout=timeout):
            yield
    except TimeoutError as exc:
        raise SandboxError(str(exc)) from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    return True


def keeper_pid(state_dir: str) -> int | None:
    with contextlib.suppress(OSError, ValueError), open(os.path.join(state_dir, KEEPER_PID)) as handle:
        pid = int(handle.read().strip())
        if pid > 0 and _alive(pid):
            return pid
    return None


def ensure(policy: Policy, launcher: list[str], *, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Start the attempt's sandbox unless it runs; returns its status. Idempotent, safe from several processes.

    `launcher` runs this package's command line (`python -m workstation.sandbox` here,
    `python3 -m rebench_sandbox` on an SSH workstation).
    """
    policy = policy.resolved()
    _private_dir(os.path.dirname(policy.state_dir))
    _private_dir(policy.state_dir)
    if not os.path.isdir(policy.workspace):
        os.makedirs(policy.workspace, mode=0o700, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(policy.workspace, policy.uid, policy.gid)
    with _locked(policy.state_dir):
        status = read_json(os.path.join(policy.state_dir, STATUS_FILE))
        if keeper_pid(policy.state_dir) and status.get("ready"):
            return {**status, **_paths(policy)}
        write_file(policy.state_dir, POLICY_FILE, json.dumps(asdict(policy)).encode())
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(policy.state_dir, STATUS_FILE))
        log = os.open(os.path.join(policy.state_dir, "keeper.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            # A double fork inside: the keeper is nobody's child, so it outlives the web server.
            subprocess.run(  # noqa: S603 - this package's own entry point
                [*launcher, "daemon", policy.state_dir],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                check=True,
                timeout=30,
            )
        except subprocess.CalledProcessError as exc:
            raise SandboxError(f"the sandbox's keeper did not start (exit status {exc.returncode})") from exc
        finally:
            os.close(log)
        return {**wait_ready(policy.state_dir), **_paths(policy)}


def _paths(policy: Policy) -> dict[str, str]:
    return {"state_dir": policy.state_dir, "tools_dir": policy.tools_dir, "workspace": policy.workspace}


def _log_tail(state_dir: str, size: int = 1500) -> str:
    with contextlib.suppress(OSError), open(os.path.join(state_dir, "keeper.log"), errors="replace") as handle:
        return handle.read()[-size:].strip()
    return ""


def wait_ready(state_dir: str, timeout: float = READY_SECONDS) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = read_json(os.path.join(state_dir, STATUS_FILE))
        if status.get("ready"):
            return status
        if status.get("error"):
            raise SandboxError(f"{status['error']} ({_log_tail(state_dir, 600)})")
        time.sleep(0.02)
    raise SandboxError(f"the sandbox did not start within {timeout:g} s. {_log_tail(state_dir)}".strip())


def frozen_reason(control: dict[str, Any], now: float | None = None) -> str | None:
    """Why the sandbox must be frozen now, by the last control the server sent; None: it may run."""
    now = time.time() if now is None else now
    if control.get("ended"):
        return "ended"
    for key in ("deadline", "hard_stop"):
        moment = control.get(key)
        if isinstance(moment, int | float) and now >= moment:
            return "deadline"
    paused = control.get("paused")
    if paused and not (paused == "break" and control.get("break_background")):
        return str(paused)
    return None


def next_change(control: dict[str, Any], now: float | None = None) -> float | None:
    """The next moment frozen_reason changes by itself (a deadline reached), or None."""
    now = time.time() if now is None else now
    moments = [m for k in ("deadline", "hard_stop") if isinstance(m := control.get(k), int | float) and m > now]
    return min(moments) if moments else None


def apply(policy: Policy, control: dict[str, Any], hierarchy: cgroups.Hierarchy | None = None) -> str | None:
    """Freeze or thaw the sandbox's working cgroup as `control` says now; returns the reason it is frozen."""
    reason = frozen_reason(control)
    hierarchy = hierarchy if hierarchy is not None else hierarchy_for(policy)
    work = policy.cgroup(WORK)
    if hierarchy is not None and hierarchy.exists(work) and hierarchy.is_frozen(work) != (reason is not None):
        hierarchy.set_frozen(work, reason is not None)
    return reason


def control(state_dir: str, update: dict[str, Any]) -> dict[str, Any]:
    """Record the server's latest word (pause, deadline, hard stop, end) and act on it at once.

    `version` orders updates that may arrive out of order (two worker threads): an older one
    changes nothing. The keeper re-reads the file and enforces it from then on by itself.
    """
    _private_dir(os.path.dirname(state_dir))
    _private_dir(state_dir)
    path = os.path.join(state_dir, CONTROL_FILE)
    with _locked(state_dir):
        current = read_json(path)
        if float(update.get("version", 0)) < float(current.get("version", 0)):
            return current
        merged = {**current, **update}
        write_file(state_dir, CONTROL_FILE, json.dumps(merged).encode())
    policy_data = read_json(os.path.join(state_dir, POLICY_FILE))
    if policy_data:
        with contextlib.suppress(cgroups.CgroupError, SandboxError, OSError):
            apply(Policy.from_json(policy_data), merged)
    return merged


def status(state_dir: str) -> dict[str, Any]:
    data = read_json(os.path.join(state_dir, STATUS_FILE))
    data["keeper"] = keeper_pid(state_dir)
    data["running"] = bool(data["keeper"])
    control_data = read_json(os.path.join(state_dir, CONTROL_FILE))
    data["frozen"] = frozen_reason(control_data) if control_data else None
    return data


def stop(state_dir: str, *, remove: bool = False) -> bool:
    """End the sandbox: stop the keeper, kill every process of the attempt, drop its cgroup. Idempotent.

    True if anything was running. With `remove` the state folder goes too (the attempt is retired).
    """
    policy_data = read_json(os.path.join(state_dir, POLICY_FILE))
    was_running = False
    pid = keeper_pid(state_dir)
    if pid:
        was_running = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            if not _alive(pid):
                break
            time.sleep(0.01)
    if policy_data:
        policy = Policy.from_json(policy_data)
        hierarchy = None
        with contextlib.suppress(SandboxError):
            hierarchy = hierarchy_for(policy)
        if hierarchy is not None and hierarchy.exists(policy.cgroup()):
            was_running = was_running or bool(hierarchy.procs(policy.cgroup()))
            hierarchy.remove(policy.cgroup())
    for name in (SPAWN_SOCKET, TOKEN_FILE, STATUS_FILE, KEEPER_PID):
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.unlink(os.path.join(state_dir, name))
    if remove:
        shutil.rmtree(state_dir, ignore_errors=True)
    return was_running


def set_token(state_dir: str, token: str, *, uid: int = -1) -> None:
    """The `task` command's credential, for the relay to add to each call: never inside the sandbox."""
    _private_dir(os.path.dirname(state_dir))
    _private_dir(state_dir)
    write_file(state_dir, TOKEN_FILE, token.encode(), mode=0o600, uid=uid)


# --- can this machine sandbox? --------------------------------------------------------------------


def bwrap_supports(bwrap: str, option: str) -> bool:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10)  # noqa: S603
        return option in result.stdout + result.stderr
    return False


def problems(
    *, bwrap: str = "bwrap", uid: int = 65534, gid: int = 65534, cgroup_version: str = "auto",
    cgroup_root: str = "", cgroup_parent: str = "rebench",
) -> list[str]:  # fmt: skip
    """Why this machine can't run attempts in sandboxes (empty: it can), each with what to install or change."""
    found: list[str] = []
    path = shutil.which(bwrap)
    if path is None:
        found.append(f"bubblewrap is not installed ({bwrap!r} is not on PATH): apt-get install bubblewrap")
    else:
        argv = [path, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-net", "--unshare-uts"]
        if bwrap_supports(path, "--disable-userns"):
            argv += ["--disable-userns"]
        argv += [*_system_binds(), "--proc", "/proc", "--dev", "/dev", "--", "/bin/true"]
        as_user = {} if os.geteuid() != 0 else {"preexec_fn": lambda: _drop_to(uid, gid, [gid])}
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=20, **as_user)  # noqa: S603
        except (OSError, subprocess.SubprocessError) as exc:
            found.append(f"bubblewrap could not run: {exc}")
        else:
            if result.returncode != 0:
                why = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
                found.append(
                    f"bubblewrap can't make user, PID, IPC and network namespaces for an unprivileged user ({why}); "
                    "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
                    "user.max_user_namespaces > 0)"
                )
    hierarchy = cgroups.detect(cgroup_version, cgroup_root)
    if hierarchy is None:
        found.append(
            "no cgroup hierarchy is mounted (/sys/fs/cgroup): memory, process and CPU caps and freezing need one"
        )
    else:
        found += hierarchy.problems(cgroup_parent)
    return found


def main_daemon(state_dir: str) -> int:
    """`daemon`: fork the keeper off (twice), so it belongs to no one; the caller waits for `ready`."""
    if os.fork() > 0:
        return 0
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    from . import keeper

    try:
        code = keeper.run(state_dir)
    except BaseException as exc:  # the keeper's last words go to its log and its status
        import traceback

        traceback.print_exc()
        with contextlib.suppress(OSError):
            write_file(
                state_dir,
                STATUS_FILE,
                json.dumps({"error": f"the sandbox's keeper failed: {exc}"}).encode(),
                mode=0o644,
            )
        code = 1
    os._exit(code)
