"""The sandbox policy of an attempt on this machine: its users, paths, share of the host and settings.

Shares follow the reservation: an attempt holding g of the host's G GPUs gets g/G of its cores
(the block beside each of its GPUs, so two attempts on one host never share a core) and of its
memory, and never more than its environment asks for. Settings can cap memory further.
"""

from __future__ import annotations

import os
import sysconfig
from functools import cache
from pathlib import Path

from django.conf import settings

from workstation import layout, ssh_access, users
from workstation.backends import SandboxRequest
from workstation.sandbox import Policy, bwrap_supports

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PYTHON_INSIDE = "/opt/rebench/python"


def host_cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def host_memory_bytes() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def share(request: SandboxRequest) -> float:
    if request.gpus and request.host_gpu_count:
        return min(1.0, len(request.gpus) / request.host_gpu_count)
    return 1.0


def cpu_set(request: SandboxRequest, cores: list[int] | None = None) -> list[int]:
    """The cores the attempt runs on (and sees): the block of the host's cores beside each GPU it holds
    (GPU i of G owns cores n·i/G to n·(i+1)/G, so attempts holding other GPUs never share a core,
    whichever GPUs they were given), at most what the environment asks; all of them for a
    reservation of the whole host."""
    cores = cores or host_cores()
    if request.gpus and request.host_gpu_count:
        n, total = len(cores), request.host_gpu_count
        chosen: list[int] = []
        for index in sorted(request.gpus):
            block = cores[n * index // total : n * (index + 1) // total]
            # Fewer cores than GPUs: the one core the GPU's position falls on.
            chosen.extend(block or [cores[min(n * index // total, n - 1)]])
        chosen = list(dict.fromkeys(chosen))
    else:
        chosen = list(cores)
    if request.cpus:
        chosen = chosen[: request.cpus]
    return chosen


def memory_bytes(request: SandboxRequest) -> int:
    limit = int(host_memory_bytes() * share(request))
    if request.memory_gb:
        limit = min(limit, int(request.memory_gb * 1024**3))
    if settings.SANDBOX_MEMORY_GB:
        limit = min(limit, int(settings.SANDBOX_MEMORY_GB * 1024**3))
    return max(limit, 256 * 1024**2)


@cache
def _disable_userns(bwrap: str) -> bool:
    return bwrap_supports(bwrap, "--disable-userns")


def python_binds() -> list[list[str]]:
    """This server's site-packages, read-only, so the sandbox's python3 has torch and triton as the scorers do."""
    folders = list(dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]))
    return [[folder, f"{PYTHON_INSIDE}/{i}"] for i, folder in enumerate(folders) if os.path.isdir(folder)]


def python_environment() -> dict[str, str]:
    binds = python_binds()
    if not binds or not settings.SANDBOX_SHARE_PYTHON_PACKAGES:
        return {}
    return {"PYTHONPATH": ":".join(inside for _outside, inside in binds), "PYTHONNOUSERSITE": "1"}


def launcher() -> tuple[list[str], dict[str, str]]:
    """How to run the sandbox package's command line on this machine.

    With the system's python3 (the package is standard library only): the keeper's relay drops to
    the terminal user, who must still be able to read the interpreter's own modules (a pyenv build
    under /root would be out of its reach).
    """
    return [settings.SANDBOX_PYTHON, "-m", "workstation.sandbox"], {
        "PYTHONPATH": str(PROJECT_ROOT),
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
    }


def isolation() -> tuple[bool, bool]:
    """(bubblewrap, cgroups) for sandboxes here: both, unless the admin allowed running without what's missing."""
    if not settings.SANDBOX_ALLOW_UNSAFE:
        return True, True
    from workstation import capabilities

    report = capabilities.local_report()
    return report.bwrap_ok, report.cgroups_ok


def local_policy(request: SandboxRequest) -> Policy:
    """The policy of `request`'s sandbox on this machine (users made if missing)."""
    attempt_user = users.attempt_user(request.attempt_id)
    tmux = users.tmux_user()
    isolate, cgroups = isolation()
    binds = python_binds() if settings.SANDBOX_SHARE_PYTHON_PACKAGES else []
    binds += [[outside, inside] for outside, inside in settings.SANDBOX_RO_BINDS]
    return Policy(
        name=layout.sandbox_name(request.attempt_id),
        attempt_id=request.attempt_id,
        state_dir=str(layout.sandbox_dir(request.attempt_id)),
        workspace=str(layout.workspace(request.attempt_id)),
        tools_dir=str(layout.tools_dir()),
        uid=attempt_user.uid,
        gid=attempt_user.gid,
        connector_gid=tmux.gid,
        relay_uid=tmux.uid,
        relay_gid=tmux.gid,
        isolate=isolate,
        bwrap=settings.SANDBOX_BWRAP,
        disable_userns=_disable_userns(settings.SANDBOX_BWRAP),
        cgroups=cgroups,
        cgroup_version=settings.SANDBOX_CGROUP_VERSION,
        cgroup_root=settings.SANDBOX_CGROUP_ROOT,
        cgroup_parent=settings.SANDBOX_CGROUP_PARENT,
        memory_bytes=memory_bytes(request),
        pids_max=settings.SANDBOX_PIDS_MAX,
        cpus=cpu_set(request),
        cpu_quota=float(len(cpu_set(request))),
        gpus=list(request.gpus),
        dev_dir=settings.SANDBOX_DEV_DIR,
        network=request.network,
        bridges=[[port, path] for port, path in request.bridges],
        model_port=request.model_port,
        ro_binds=binds,
        python=settings.SANDBOX_PYTHON,
        shell=settings.TERMINAL_SHELL,
        env=python_environment(),
        api_url=settings.TERMINAL_API_URL,
        api_prefix=f"/attempts/{request.attempt_id}/",
        hostname=f"attempt-{request.attempt_id}",
        ssh_max_sessions=settings.SSH_ACCESS_MAX_SESSIONS,
        login_home=attempt_user.home,
        ssh_keys_file=str(ssh_access.keys_file(request.attempt_id)),
        ssh_tunnel=settings.SSH_ACCESS_TUNNEL,
        sshd=settings.SSH_ACCESS_SSHD,
    )
