"""The METR Task Standard adapter: register a task family by path; its tasks become bookable environments.

Every TaskFamily method runs in a subprocess through `driver.py`, as the standard's own driver does,
with the answer as JSON between markers on stdout.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from environments.models import Environment, TaskFamily, TaskStandardTask
from environments.packages import EnvironmentPackage
from rebench_site.errors import ServiceError
from workstation import policy as workstation_policy
from workstation import scoring as sandbox

DRIVER = Path(__file__).resolve().parent / "driver.py"
DRIVER_NAME = "_rebench_driver.py"
DESCRIBE_TIMEOUT = 120
START_TIMEOUT = 600
INSTALL_TIMEOUT = 3600
HOME_AGENT = "/home/agent"


class TaskStandardError(ServiceError):
    """The family breaks the standard, or one of its methods failed."""


@dataclass(frozen=True)
class TaskStandardPackage(EnvironmentPackage):
    family_name: str = ""
    task_name: str = ""
    scoring: str = TaskStandardTask.Scoring.INTERMEDIATE
    task_instructions: str = ""
    env_vars: list[str] = field(default_factory=list)

    @property
    def instructions(self) -> str:
        return self.task_instructions

    @property
    def accepts_intermediate(self) -> bool:
        return self.scoring == TaskStandardTask.Scoring.INTERMEDIATE

    @property
    def required_environment_variables(self) -> list[str]:
        return list(self.env_vars)

    def populate(self, target: Path) -> None:
        shutil.copytree(self.root, target)
        shutil.copy2(DRIVER, target / DRIVER_NAME)

    def scorer_argv(
        self,
        python: str,
        protected_copy: Path,
        workspace: Path,
        *,
        final: bool = False,
        context: dict[str, Any] | None = None,
    ) -> list[str]:
        method = "final" if final else "intermediate_score"
        args = {"task_name": self.task_name, **(context or {})}
        return [
            python,
            str(protected_copy / DRIVER_NAME),
            str(protected_copy),
            self.family_name,
            method,
            json.dumps(args),
        ]

    def prepare_staging(self, staging: Path) -> list[str]:
        """TaskFamily.start, run (as the standard has it) with the worker's privileges, in the staging folder
        that is then copied into the workspace (never in the workspace itself, which the expert may hold);
        TaskFamily.install first, if this machine hasn't run it for this version of the family."""
        install_ensure(self.root, self.family_name, env_vars=self.env_vars)
        args = {"task_name": self.task_name}
        call(
            self.root,
            self.family_name,
            "start",
            args,
            cwd=staging,
            timeout=START_TIMEOUT,
            env_vars=self.env_vars,
            agent_home=staging,
        )
        return []


def call(
    family_dir: Path,
    family_name: str,
    method: str,
    args: dict[str, Any],
    *,
    cwd: Path,
    timeout: float,
    env_vars: list[str] | tuple[str, ...] = (),
    agent_home: Path | None = None,
) -> Any:
    """Run one method through the driver; its result, or TaskStandardError with the method's own words.

    With `agent_home` (TaskFamily.start), the method sees the standard's layout where this machine can
    give it one (bubblewrap, as root): `agent_home` at /home/agent and the family's directory, read-only, at /root,
    so a family that copies /root/assets to /home/agent runs unchanged and writes nothing of the host's.
    """
    marker = sandbox.new_marker()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", sandbox.RESULT_MARKER_ENV: marker}
    # Only the variables the family asks for (required_environment_variables), from the worker's.
    env.update({name: os.environ[name] for name in env_vars if name in os.environ})
    argv = [sys.executable, str(DRIVER), str(family_dir), family_name, method, json.dumps(args)]
    bwrap = shutil.which("bwrap")
    if agent_home is not None and bwrap and os.geteuid() == 0:
        # The host's filesystem as it is (start runs with the worker's privileges, as the standard's
        # runs as root), except two places: homes are a fresh tmpfs holding only /home/agent.
        layout = ["--dev-bind", "/", "/", "--tmpfs", "/home", "--bind", str(agent_home), HOME_AGENT]
        layout += ["--ro-bind", str(family_dir), "/root", "--chdir", HOME_AGENT, "--die-with-parent"]
        # This server's interpreter and packages may live under the /root just covered: the system's
        # python3 with the packages bound where the attempt sandbox has them, as the scorers run.
        for outside, inside in workstation_policy.python_binds():
            layout += ["--ro-bind", outside, inside]
        env.update(workstation_policy.python_environment())
        env["HOME"] = "/root"
        python = settings.SANDBOX_PYTHON
        argv = [bwrap, *layout, "--", python, str(DRIVER), "/root", family_name, method, json.dumps(args)]
    result = sandbox.run(
        argv,
        cwd=cwd,
        timeout=timeout,
        memory_bytes=None,
        env=env,
    )
    if result.timed_out:
        raise TaskStandardError(f"TaskFamily.{method} ran past {timeout:g} s.", field="path")
    parts = result.stdout.split(marker)
    if len(parts) < 3:
        raise TaskStandardError(
            f"TaskFamily.{method} crashed (exit status {result.returncode}): {result.stderr_tail(5)}", field="path"
        )
    answer = json.loads(parts[1])
    if not answer.get("ok"):
        detail = result.stderr_tail(3)
        raise TaskStandardError(answer.get("error", "failed") + (f" — {detail}" if detail else ""), field="path")
    return answer.get("result")


@dataclass(frozen=True)
class Installed:
    version: str
    ran: bool  # False: this machine had run it for this version already
    output: str


def family_version(family_dir: Path) -> str:
    """A digest of the family's files (names, sizes, modification times; not contents: assets run to
    gigabytes): a change to any of them is a new version, whose install() runs again."""
    digest = hashlib.sha256()
    for path in sorted(family_dir.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        stat = path.stat()
        digest.update(f"{path.relative_to(family_dir)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def install_ensure(family_dir: Path, family_name: str, *, env_vars: list[str] | tuple[str, ...] = ()) -> Installed:
    """TaskFamily.install() once per family version on this machine, as the standard's image build runs it:
    with the worker's privileges and network, in the family's directory. Cached by a marker file under
    ENVIRONMENT_CACHE_DIR (a failed install leaves none: the next preparation tries again); concurrent
    preparations wait for one another."""
    version = family_version(family_dir)
    cache = Path(settings.ENVIRONMENT_CACHE_DIR) / "task-families"
    cache.mkdir(parents=True, exist_ok=True)
    marker = cache / f"{family_name}-{version}.installed"
    with (cache / f"{family_name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return Installed(version=version, ran=False, output=marker.read_text())
        answer = call(
            family_dir, family_name, "install", {}, cwd=family_dir, timeout=INSTALL_TIMEOUT, env_vars=env_vars
        )
        output = str(answer)
        marker.write_text(output)
        return Installed(version=version, ran=True, output=output)


def _manifest(family_dir: Path) -> dict[str, Any]:
    path = family_dir / "manifest.yaml"
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise TaskStandardError(f"manifest.yaml is not valid YAML: {exc}", field="path") from exc
    if not isinstance(data, dict):
        raise TaskStandardError("manifest.yaml must be a mapping.", field="path")
    return data


def _task_manifest(manifest: dict[str, Any], task_name: str) -> dict[str, Any]:
    """The task's entry under `tasks:`, over the family-wide defaults at the top level."""
    task = (manifest.get("tasks") or {}).get(task_name) or {}
    merged: dict[str, Any] = {
        "resources": {**(manifest.get("resources") or {}), **(task.get("resources") or {})},
        "scoring": {**(manifest.get("scoring") or {}), **(task.get("scoring") or {})},
    }
    return merged


def _resources(task_manifest: dict[str, Any]) -> dict[str, Any]:
    resources = task_manifest["resources"]
    gpu = resources.get("gpu") or {}
    count_range = gpu.get("count_range") or [0, 0]
    if not (isinstance(count_range, list) and len(count_range) == 2 and all(isinstance(n, int) for n in count_range)):
        raise TaskStandardError("resources.gpu.count_range must be [min, max] integers.", field="path")
    if count_range[0] < 0 or count_range[1] < count_range[0]:
        raise TaskStandardError(f"resources.gpu.count_range {count_range} is not a range.", field="path")
    return {
        "gpus_min": count_range[0],
        "gpus_max": count_range[1],
        "gpu_model": str(gpu.get("model", "")).upper() if count_range[1] else "",
        "cpus": int(resources.get("cpus") or 0),
        "memory_gb": int(resources.get("memory_gb") or 0),
    }


def slug_for(family_name: str, task_name: str) -> str:
    return re.sub(r"[^-a-zA-Z0-9_]+", "-", f"{family_name}-{task_name}")[:120]


def task_family_register(*, path: str) -> TaskFamily:
    """Register (or refresh) the family at `path`: its tasks become environments with the manifest's resources."""
    family_dir = Path(path).resolve()
    name = family_dir.name
    if not family_dir.is_dir():
        raise TaskStandardError(f"{path} is not a directory.", field="path")
    if not (family_dir / f"{name}.py").is_file():
        raise TaskStandardError(f"A task family {name!r} needs {name}/{name}.py.", field="path")
    manifest = _manifest(family_dir)
    described = call(family_dir, name, "describe", {}, cwd=family_dir, timeout=DESCRIBE_TIMEOUT)
    if not described["tasks"]:
        raise TaskStandardError("get_tasks returned no tasks.", field="path")
    rows = []
    for task_name in described["tasks"]:
        task_manifest = _task_manifest(manifest, task_name)
        rows.append((task_name, _resources(task_manifest), task_manifest["scoring"]))
    installed = install_ensure(family_dir, name, env_vars=described["required_environment_variables"])
    return _save(family_dir, name, manifest, described, rows, installed)


@transaction.atomic
def _save(
    family_dir: Path,
    name: str,
    manifest: dict[str, Any],
    described: dict[str, Any],
    rows: list[tuple[str, dict[str, Any], Any]],
    installed: Installed,
) -> TaskFamily:
    family, _ = TaskFamily.objects.update_or_create(
        name=name,
        defaults={
            "path": str(family_dir),
            "standard_version": str(described.get("standard_version") or ""),
            "manifest": manifest,
            "required_environment_variables": described["required_environment_variables"],
            "installed_version": installed.version,
            **({"installed_at": timezone.now(), "install_output": installed.output[-4000:]} if installed.ran else {}),
        },
    )
    scoring = described["scoring"]
    for task_name, resources, scoring_manifest in rows:
        instructions = str(described["instructions"][task_name])
        environment, _ = Environment.objects.update_or_create(
            slug=slug_for(name, task_name),
            defaults={
                "title": f"{name} / {task_name}",
                "description": instructions.strip().splitlines()[0][:500] if instructions.strip() else "",
                "raw_score": "the task's score",
                "direction": Environment.Direction.HIGHER,
                # The final entry is the family's own aggregate (or its end-of-run score): the last one.
                "aggregation": Environment.Aggregation.LAST,
                "starting_score": 0.0,
                "reference_score": 1.0,
                "scores_visible": bool(scoring_manifest.get("visible_to_agent", True)),
                "source": Environment.Source.TASK_STANDARD,
                "is_active": True,
                **resources,
            },
        )
        TaskStandardTask.objects.update_or_create(
            family=family,
            task_name=task_name,
            defaults={
                "environment": environment,
                "instructions": instructions,
                "permissions": described["permissions"][task_name],
                "scoring": scoring,
            },
        )
    return family


def package_fields(slug: str) -> dict[str, Any] | None:
    """What the registration says of the task `slug`, as plain data: a workstation builds the package from it."""
    row = TaskStandardTask.objects.select_related("family").filter(environment__slug=slug).first()
    if row is None:
        return None
    return {
        "root": row.family.path,
        "family_name": row.family.name,
        "task_name": row.task_name,
        "scoring": row.scoring,
        "task_instructions": row.instructions,
        "env_vars": list(row.family.required_environment_variables),
    }


def package_from(slug: str, fields: dict[str, Any]) -> TaskStandardPackage:
    """The task's package from its registration's plain data (package_fields), on the machine that runs it."""
    return TaskStandardPackage(
        slug=slug,
        root=Path(fields["root"]),
        scorer=DRIVER_NAME,
        score_timeout_seconds=float(settings.GRADING_SCORE_TIMEOUT_SECONDS),
        memory_limit_gb=float(settings.GRADING_MEMORY_LIMIT_GB),
        family_name=str(fields["family_name"]),
        task_name=str(fields["task_name"]),
        scoring=str(fields["scoring"]),
        task_instructions=str(fields["task_instructions"]),
        env_vars=[str(name) for name in fields["env_vars"]],
        # A family's scoring may read anything of /home/agent: all of it, as regular files.
        workspace_files=(".",),
    )


def package_for(slug: str) -> TaskStandardPackage | None:
    fields = package_fields(slug)
    return None if fields is None else package_from(slug, fields)
