"""The bubblewrap command line of a sandbox, the step between fork and exec, and whether this machine can sandbox."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence

from . import cgroups
from .policy import GPU_SHARED_NODES, HOME, RUN, TOOLS, Policy, SandboxError

# --- bubblewrap ------------------------------------------------------------------------------------


# The top-level links or folders of a merged /usr, bound or linked as the host has them.
_USR_TOPS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Top-level folders the sandbox mounts or links itself: a login home under one of them is left alone.
_MOUNTED_TOPS = frozenset({"usr", "etc", *_USR_TOPS, "proc", "dev", "sys", "tmp", "run", "opt"})


def _system_binds() -> list[str]:
    """The host's system read-only: /usr and /etc, and the top-level links or folders of a merged /usr."""
    argv = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for top in _USR_TOPS:
        path = f"/{top}"
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    return argv


def _home_link_ok(home: str) -> bool:
    path = os.path.normpath(home) if home.startswith("/") else ""
    parts = path.strip("/").split("/")
    return len(parts) >= 2 and parts[0] not in _MOUNTED_TOPS and path != HOME and not HOME.startswith(path + "/")


def bwrap_argv(
    policy: Policy,
    command: list[str],
    *,
    workspace_readonly: bool = False,
    ro_binds: Sequence[tuple[str, str]] = (),
    rw_binds: Sequence[tuple[str, str]] = (),
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
    if _home_link_ok(policy.login_home):
        # sshd (the tunnel's) and `cd ~rb-a7` go to the passwd entry's home: the workspace, under both names.
        argv += ["--symlink", HOME, os.path.normpath(policy.login_home)]
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
        as_user = None if os.geteuid() != 0 else (lambda: _drop_to(uid, gid, [gid]))
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=20, preexec_fn=as_user)  # noqa: S603
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
