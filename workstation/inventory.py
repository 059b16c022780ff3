"""What a workstation's heartbeat says about it: its GPUs (nvidia-smi), its disk and its sandbox.

Runs on the workstation and returns plain, JSON-able data; the server decides what it means for
bookings (trials.services.workstation_record_heartbeat). Every program it runs has a timeout: a hung
driver must not hang the heartbeat, whose silence would take the whole host offline.
"""

from __future__ import annotations

import contextlib
import csv
import pwd
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import TypedDict

from django.conf import settings

from workstation import capabilities, layout, users

NVIDIA_SMI_SECONDS = 15.0
GPU_FIELDS = "index,uuid,name,memory.total,temperature.gpu,ecc.errors.uncorrected.volatile.total"
PROCESS_FIELDS = "gpu_uuid,pid,process_name"
# How nvidia-smi writes a value it doesn't have: "[N/A]", "[Not Supported]", "[Unknown Error]", "N/A".
_NO_VALUE = re.compile(r"^\[.*\]$|^N/A$", re.IGNORECASE)


class GpuProcess(TypedDict):
    pid: int
    user: str
    command: str


class GpuReport(TypedDict):
    index: int
    uuid: str
    model: str
    memory_mb: int | None
    temperature_c: int | None
    ecc_errors: int | None
    foreign_processes: list[GpuProcess]


class DiskReport(TypedDict):
    path: str
    free_bytes: int
    total_bytes: int


class Inventory(TypedDict):
    # None: unknown (no nvidia-smi, or it failed); the server then keeps what the admin declared.
    gpus: list[GpuReport] | None
    disk: DiskReport | None
    sandbox_problems: list[str]
    # Why something is missing from the report ("nvidia-smi not found"), for the admin's page.
    notes: list[str]


class NvidiaSmiError(Exception):
    """nvidia-smi is missing, failed or answered something we can't read; the message says which."""


def _value(text: str) -> str | None:
    text = text.strip()
    return None if not text or _NO_VALUE.match(text) else text


def _integer(text: str) -> int | None:
    value = _value(text)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def _rows(output: str) -> list[list[str]]:
    """nvidia-smi's CSV: ", " between fields; a process name may itself hold a comma, hence csv."""
    return [
        [cell.strip() for cell in row]
        for row in csv.reader(output.splitlines(), skipinitialspace=True)
        if row and any(cell.strip() for cell in row)
    ]


def parse_gpus(output: str) -> list[GpuReport]:
    """The rows of `nvidia-smi --query-gpu=<GPU_FIELDS> --format=csv,noheader,nounits`."""
    gpus: list[GpuReport] = []
    for row in _rows(output):
        if len(row) < 6:
            raise NvidiaSmiError(f"nvidia-smi gave a GPU line with {len(row)} fields, not 6: {', '.join(row)!r}")
        index = _integer(row[0])
        if index is None or index < 0:
            raise NvidiaSmiError(f"nvidia-smi gave a GPU line without an index: {', '.join(row)!r}")
        gpus.append(
            GpuReport(
                index=index,
                uuid=_value(row[1]) or "",
                model=_value(row[2]) or "",
                memory_mb=_integer(row[3]),
                temperature_c=_integer(row[4]),
                ecc_errors=_integer(row[5]),
                foreign_processes=[],
            )
        )
    return gpus


def parse_processes(output: str) -> list[tuple[str, int, str]]:
    """(GPU UUID, pid, process name) from `nvidia-smi --query-compute-apps=<PROCESS_FIELDS> --format=csv,noheader`."""
    found = []
    for row in _rows(output):
        if len(row) < 3:
            continue  # "No running processes found" on drivers that print it
        pid = _integer(row[1])
        if pid is None:
            continue
        found.append((row[0], pid, ", ".join(row[2:])))
    return found


def process_user(pid: int) -> str:
    """The name of the real user running `pid` ("" if it has gone; the uid if it has no name)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ""
    for line in status.splitlines():
        if line.startswith("Uid:"):
            uid = int(line.split()[1])
            try:
                return pwd.getpwuid(uid).pw_name
            except KeyError:
                return str(uid)
    return ""


def is_ours(user: str, *, also: Iterable[str] = ()) -> bool:
    """Whether a GPU process of `user` belongs to an attempt or to the site (not "foreign").

    An attempt's user (`rb-a<id>`), the shared attempt user when per-attempt users are off, the
    terminal holders' user, and `also` (any other login a caller names). Without
    root every attempt runs as this process's own user, so that one is ours too.
    """
    prefix = settings.TERMINAL_ATTEMPT_USER_PREFIX
    if prefix and user.startswith(prefix) and user[len(prefix) :].isdigit():
        return True
    ours = {settings.TERMINAL_LOCAL_USER, settings.TERMINAL_TMUX_USER, *also}
    if not users.is_root():
        ours.add(users.current_user().name)
    return user in ours - {""}


def _nvidia_smi(program: str, *arguments: str) -> str:
    try:
        result = subprocess.run(  # noqa: S603 - a fixed program and fixed arguments
            [program, *arguments], capture_output=True, text=True, timeout=NVIDIA_SMI_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise NvidiaSmiError(f"nvidia-smi did not answer within {NVIDIA_SMI_SECONDS:g} s") from None
    except OSError as exc:
        raise NvidiaSmiError(f"nvidia-smi could not run: {exc.strerror or exc}") from None
    if result.returncode != 0:
        said = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise NvidiaSmiError(f"nvidia-smi failed (exit {result.returncode}){': ' + said[-1] if said else ''}")
    return result.stdout


def gpus_report(*, also_ours: Iterable[str] = ()) -> list[GpuReport]:
    """Every GPU nvidia-smi sees, with the compute processes on it that belong to no attempt."""
    program = shutil.which("nvidia-smi")
    if program is None:
        raise NvidiaSmiError("nvidia-smi not found: the GPUs are as the admin declared them")
    gpus = parse_gpus(_nvidia_smi(program, f"--query-gpu={GPU_FIELDS}", "--format=csv,noheader,nounits"))
    by_uuid = {gpu["uuid"]: gpu for gpu in gpus if gpu["uuid"]}
    processes = parse_processes(_nvidia_smi(program, f"--query-compute-apps={PROCESS_FIELDS}", "--format=csv,noheader"))
    for uuid, pid, command in processes:
        gpu = by_uuid.get(uuid)
        user = process_user(pid)
        # No user: the process ended since nvidia-smi listed it.
        if gpu is not None and user and not is_ours(user, also=also_ours):
            gpu["foreign_processes"].append(GpuProcess(pid=pid, user=user, command=command))
    return gpus


def disk_report() -> DiskReport | None:
    """Free and total space where the workspaces are (or would be made: the nearest existing folder up)."""
    path = layout.workspace_root().resolve()
    for folder in [path, *path.parents]:
        with contextlib.suppress(OSError):
            usage = shutil.disk_usage(folder)
            return DiskReport(path=str(path), free_bytes=usage.free, total_bytes=usage.total)
    return None


def report(*, also_ours: Iterable[str] = ()) -> Inventory:
    """This workstation's inventory for its heartbeat. `also_ours`: users whose GPU processes are the site's."""
    notes: list[str] = []
    gpus: list[GpuReport] | None
    try:
        gpus = gpus_report(also_ours=also_ours)
    except NvidiaSmiError as exc:
        gpus = None
        notes.append(str(exc))
    disk = disk_report()
    if disk is None:
        notes.append(f"no disk space known for {layout.workspace_root()}")
    return Inventory(
        gpus=gpus,
        disk=disk,
        sandbox_problems=list(capabilities.local_report().problems),
        notes=notes,
    )
