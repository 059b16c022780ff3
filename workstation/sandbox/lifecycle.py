"""The attempt's long-lived sandbox: start it (the keeper), steer it (the server's control), stop it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict
from typing import Any

from . import cgroups
from .bwrap import hierarchy_for
from .policy import (
    CONTROL_FILE,
    CONTROL_LOCK,
    KEEPER_PID,
    LOCK_SECONDS,
    POLICY_FILE,
    READY_SECONDS,
    SPAWN_SOCKET,
    STATUS_FILE,
    TOKEN_FILE,
    WORK,
    Policy,
    SandboxError,
)
from .state import _alive, _locked, _private_dir, keeper_pid, locked, read_json, write_file

# --- the attempt's long-lived sandbox: start, control, stop ---------------------------------------


def ensure(policy: Policy, launcher: list[str], *, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Start the attempt's sandbox unless it runs; returns its status. Idempotent, safe from several processes.

    `launcher` runs this package's command line (`python -m workstation.sandbox`).
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
    # The server renews its word while it hears this workstation; past the lease it has heard
    # nothing for as long as it waits before pausing the attempt for the outage, so the expert's
    # processes stop here too instead of running on the paused clock.
    lease = control.get("lease_until")
    if isinstance(lease, int | float) and now >= lease:
        return "unreachable"
    return None


def next_change(control: dict[str, Any], now: float | None = None) -> float | None:
    """The next moment frozen_reason changes by itself (a deadline reached, the lease run out), or None."""
    now = time.time() if now is None else now
    keys = ("deadline", "hard_stop", "lease_until")
    moments = [m for k in keys if isinstance(m := control.get(k), int | float) and m > now]
    return min(moments) if moments else None


def apply(policy: Policy, control: dict[str, Any], hierarchy: cgroups.Hierarchy | None = None) -> str | None:
    """Freeze or thaw the sandbox's working cgroup as `control` says now; returns the reason it is frozen."""
    reason = frozen_reason(control)
    hierarchy = hierarchy if hierarchy is not None else hierarchy_for(policy)
    work = policy.cgroup(WORK)
    if hierarchy is not None and hierarchy.exists(work) and hierarchy.is_frozen(work) != (reason is not None):
        hierarchy.set_frozen(work, reason is not None)
    return reason


def enforce(
    state_dir: str, policy: Policy, hierarchy: cgroups.Hierarchy | None = None, *, timeout: float = LOCK_SECONDS
) -> tuple[dict[str, Any], str | None]:
    """Freeze or thaw the sandbox as the control file says now; returns the file and the reason it is frozen.

    The file is read and applied under one lock, so whoever applies last applies the latest word: a
    thaw read before a pause and applied after the pause's freeze would let the expert's processes
    run on through the break until the keeper's next tick.
    """
    with locked(os.path.join(state_dir, CONTROL_LOCK), timeout=timeout):
        current = read_json(os.path.join(state_dir, CONTROL_FILE))
        return current, apply(policy, current, hierarchy)


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
        with contextlib.suppress(cgroups.CgroupError, SandboxError, OSError, TimeoutError):
            enforce(state_dir, Policy.from_json(policy_data))
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

    True if anything was running. With `remove` the state folder goes too (the attempt is retired), all
    but its SSH sessions' recordings: the site collects them once the attempt has ended, which may be
    after the final scoring run has retired it.
    """
    from .ssh_gate import SSH_DIR, stop_sessions  # here: ssh_gate reads frozen_reason from this module

    policy_data = read_json(os.path.join(state_dir, POLICY_FILE))
    was_running = stop_sessions(state_dir) > 0
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
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            for entry in os.scandir(state_dir):
                if entry.name == SSH_DIR:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
    return was_running


def set_token(state_dir: str, token: str, *, uid: int = -1) -> None:
    """The `task` command's credential, for the relay to add to each call: never inside the sandbox."""
    _private_dir(os.path.dirname(state_dir))
    _private_dir(state_dir)
    write_file(state_dir, TOKEN_FILE, token.encode(), mode=0o600, uid=uid)


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
