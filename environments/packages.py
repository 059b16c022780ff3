"""Environment packages on disk: instructions, starting and reference solutions, scorer and grading metadata."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

from rebench_site.errors import ServiceError

BUILTIN_DIR = Path(__file__).resolve().parent
COMMON_DIR = BUILTIN_DIR / "common"
DEFAULT_SCORE_TIMEOUT = 600
CONFIGURATIONS = ("small", "full")
CONFIGURATION_FILE = "configuration.json"
START_TIMEOUT = 900
# A small configuration's start trains its models on the CPU, and its constants were measured from
# them: the same arithmetic on every workstation. One thread (torch's default is one per core, and
# two threads partition the sums otherwise) and the AVX2 code paths of ATen's kernels, MKL (its
# conditional numerical reproducibility) and oneDNN, which a CPU with AVX-512 would otherwise
# take: each of these changes a trained model's bits (measured: see docs/subsystems/environments.md).
REPRODUCIBLE_CPU_ENVIRONMENT = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}


class ConfigurationError(ServiceError):
    """The active configuration can't run here: an unknown name, or full-scale data that isn't installed."""


@dataclass(frozen=True)
class Configuration:
    """One scale of an environment: its own measured start/reference raw scores and the scorer's parameters.

    `paths` maps a parameter name to the setting holding a full-scale path (checked at start);
    `measured_with` is the command that measured the two scores (or where RE-Bench published them).
    """

    name: str
    starting_score: float
    reference_score: float
    measured_with: str = ""
    # Which published number this is where there are several (chat RL's two references), and why.
    note: str = ""
    # For a score that is noisy by nature (wall-clock time): how far apart repeated measurements on
    # one machine came out (max − min, `environment_measure --runs N`). None: the score is the same
    # on every run and every machine that prepares the configuration (tests/environments/test_reproducibility.py).
    starting_score_spread: float | None = None
    reference_score_spread: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    # Parameter name → setting whose value the scorer gets in configuration.json (endpoint URLs, budgets).
    settings: dict[str, str] = field(default_factory=dict)


def active_configuration_name(slug: str) -> str:
    """ENVIRONMENT_CONFIGURATION_<SLUG> if set, else ENVIRONMENT_CONFIGURATION."""
    overrides = getattr(settings, "ENVIRONMENT_CONFIGURATION_OVERRIDES", {})
    name = str(overrides.get(slug.lower()) or getattr(settings, "ENVIRONMENT_CONFIGURATION", "small"))
    if name not in CONFIGURATIONS:
        raise ConfigurationError(
            f"Unknown environment configuration {name!r} for {slug}: use one of {', '.join(CONFIGURATIONS)}.",
            field="configuration",
        )
    return name


FIDELITY_MATCHES = ("yes", "partly", "no")


@dataclass(frozen=True)
class FidelityRow:
    """One line of how the `full` configuration compares with RE-Bench's own task (metadata `fidelity`)."""

    aspect: str
    rebench: str
    here: str
    matches: str  # one of FIDELITY_MATCHES


def _fidelity(rows: Any) -> tuple[FidelityRow, ...]:
    """The package's fidelity table; a row missing a field or with another `matches` is left out
    (tests/environments/test_fidelity.py holds the built-in packages to a whole, valid table)."""
    if not isinstance(rows, list):
        return ()
    found = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        values = [row.get(key) for key in ("aspect", "rebench", "here", "matches")]
        texts = [v for v in values if isinstance(v, str) and v]
        if len(texts) == len(values) and texts[3] in FIDELITY_MATCHES:
            found.append(FidelityRow(*texts))
    return tuple(found)


@dataclass(frozen=True)
class EnvironmentPackage:
    slug: str
    root: Path
    scorer: str = "scoring/score.py"
    score_timeout_seconds: float = DEFAULT_SCORE_TIMEOUT
    memory_limit_gb: float = 16
    extra: dict[str, Any] = field(default_factory=dict)
    configurations: dict[str, Configuration] = field(default_factory=dict)
    # A script in the scoring folder run at workspace preparation: `start.py <workspace> <configuration.json>`.
    start: str = ""
    # Copy environments/common beside the scorer (as `common/`), for scorers and start scripts that use it.
    uses_common: bool = False
    # Worker environment variables handed to the scorer (secrets such as API keys: never written to a file).
    environment_variables: tuple[str, ...] = ()
    # The workspace files the scorer reads: snapshotted out of the workspace as the attempt's user
    # (regular files only) and shown to the scorer at /home/agent. The scorer never sees the rest.
    workspace_files: tuple[str, ...] = ()
    # The environment's model, callable from the expert's shell under the attempt's budget: the variable
    # holding its key on the web server (the endpoint, model and budget are the configuration's settings
    # model_url, model, budget_tokens, budget_cost, price_input, price_output). Empty: no model in the shell.
    expert_model_key: str = ""
    # A folder of the package (e.g. scoring/harness) holding the code that runs the expert's code when
    # the scorer asks (the harness): copied fresh for each run, it runs in the attempt's sandbox as
    # the attempt's user, not with the scorer's privileges.
    harness_folder: str = ""
    # "host" for scorers that call an endpoint (a judge, a model): the scorer's own instance gets the
    # host's network; the expert's code never does.
    scorer_network: str = "none"
    # The package's own version (metadata `version`), recorded on every attempt beside the scorer's digest.
    version: str = "1"
    # How its `full` configuration compares with RE-Bench's task, row by row (the environment's page shows it).
    fidelity: tuple[FidelityRow, ...] = ()

    @property
    def instructions_path(self) -> Path:
        return self.root / "instructions.md"

    @property
    def instructions(self) -> str:
        return self.instructions_path.read_text() if self.instructions_path.exists() else ""

    @property
    def solution_dir(self) -> Path:
        return self.root / "solution"

    @property
    def reference_dir(self) -> Path:
        return self.root / "reference"

    @property
    def scoring_dir(self) -> Path:
        """What is copied to the protected directory: the scorer's folder."""
        return (self.root / self.scorer).parent

    @property
    def accepts_intermediate(self) -> bool:
        return True

    @property
    def required_environment_variables(self) -> list[str]:
        return list(self.environment_variables)

    @property
    def configuration(self) -> Configuration | None:
        """The active configuration; None for a package that declares none (one scale only)."""
        if not self.configurations:
            return None
        name = active_configuration_name(self.slug)
        if name not in self.configurations:
            raise ConfigurationError(
                f"{self.slug} has no {name!r} configuration (it has {', '.join(sorted(self.configurations))}).",
                field="configuration",
            )
        return self.configurations[name]

    def cache_dir(self) -> Path | None:
        """Where start builds what this configuration needs, keyed by the configuration's contents."""
        config = self.configuration
        if config is None:
            return None
        key = json.dumps({"params": config.params, "paths": self.resolved_paths(check=False)}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return Path(settings.ENVIRONMENT_CACHE_DIR) / self.slug / f"{config.name}-{digest}"

    def resolved_paths(self, *, check: bool = True) -> dict[str, str]:
        """Full-scale paths from settings; with `check`, a clear error naming the setting when one is missing."""
        config = self.configuration
        if config is None:
            return {}
        resolved = {}
        for param, setting in config.paths.items():
            value = str(getattr(settings, setting, "") or "")
            if check and not value:
                raise ConfigurationError(
                    f"{self.slug} ({config.name}) needs {setting}: the path of its full-scale {param}. "
                    f"Set it on the workstation, or run the small configuration (ENVIRONMENT_CONFIGURATION=small).",
                    field="configuration",
                )
            if check and not Path(value).exists():
                raise ConfigurationError(
                    f"{self.slug} ({config.name}): {setting}={value} does not exist on this workstation.",
                    field="configuration",
                )
            resolved[param] = value
        return resolved

    def configuration_document(self) -> dict[str, Any]:
        """What the scorer and the start script read from configuration.json."""
        config = self.configuration
        if config is None:
            return {}
        return {
            "slug": self.slug,
            "name": config.name,
            "params": config.params,
            "paths": self.resolved_paths(),
            "cache_dir": str(self.cache_dir()),
            # The package's pristine starting solution: what start measures reference results from.
            "solution_dir": str(self.solution_dir),
            "starting_score": config.starting_score,
            "reference_score": config.reference_score,
            "settings": {param: _jsonable_setting(name) for param, name in config.settings.items()},
            # What pinned the arithmetic of the start (REPRODUCIBLE_CPU_ENVIRONMENT for a small one): a
            # scorer that reruns the expert's training gives it the same, so the untouched starting
            # solution reproduces the start's reference bits on any CPU.
            "cpu_environment": cpu_environment(self),
        }

    def scores(self, default_start: float, default_reference: float) -> tuple[float, float]:
        """The active configuration's (start, reference) raw scores; the given ones without configurations."""
        config = self.configuration
        if config is None:
            return default_start, default_reference
        return config.starting_score, config.reference_score

    def scorer_digest(self) -> str:
        """SHA-256 over what produces a score: the scoring folder, common code if used, and the metadata.

        Each file contributes its path and its bytes, in path order, so a renamed or changed file
        changes the digest; compiled caches are left out (they differ per machine, not per scorer).
        """
        digest = hashlib.sha256()
        roots = [("scoring", self.scoring_dir)]
        if self.uses_common:
            roots.append(("common", COMMON_DIR))
        files = [(f"{label}/{path.relative_to(root)}", path) for label, root in roots for path in root.rglob("*")]
        metadata = self.root / "metadata.yaml"
        if metadata.is_file():
            files.append(("metadata.yaml", metadata))
        for name, path in sorted(files):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()

    def populate(self, target: Path) -> None:
        """Fill the scorer's protected folder: the scoring folder, common code, the active configuration."""
        shutil.copytree(self.scoring_dir, target)
        if self.uses_common:
            shutil.copytree(COMMON_DIR, target / "common", ignore=shutil.ignore_patterns("__pycache__"))
        document = self.configuration_document()
        if document:
            (target / CONFIGURATION_FILE).write_text(json.dumps(document, indent=2))

    def scorer_argv(
        self,
        python: str,
        protected_copy: Path,
        workspace: Path,
        *,
        final: bool = False,
        context: dict[str, Any] | None = None,
    ) -> list[str]:
        return [python, str(protected_copy / Path(self.scorer).name), str(workspace)]

    def data_paths(self) -> list[str]:
        """What the scorer reads besides the workspace: the configuration's cache and full-scale data (read-only)."""
        if self.configuration is None:
            return []
        return [str(self.cache_dir()), *(p for p in self.resolved_paths(check=False).values() if p)]

    def prepare_staging(self, staging: Path) -> list[str]:
        """Fill `staging` (a fresh folder of ours) with what the workspace starts with; it is copied in afterwards."""
        copied = copy_starting_solution(self, staging)
        if self.start:
            run_start(self, staging)
        return copied


def cpu_environment(package: EnvironmentPackage) -> dict[str, str]:
    """The variables that pin the CPU arithmetic of a small configuration's start (and its measurement); else none."""
    config = package.configuration
    return dict(REPRODUCIBLE_CPU_ENVIRONMENT) if config is not None and config.name == "small" else {}


def _jsonable_setting(name: str) -> Any:
    """A setting's value as configuration.json can hold it (paths as strings; JSON objects and lists as they are)."""
    value = getattr(settings, name, None)
    return value if value is None or isinstance(value, bool | int | float | str | dict | list) else str(value)


def run_start(package: EnvironmentPackage, workspace: Path) -> None:
    """Run the package's start script (as the worker: it writes the protected cache) from a fresh copy.

    It builds what the configuration needs (cached) and fills `workspace`, a staging folder of ours
    (never the attempt's live workspace); a failure is a ConfigurationError carrying the script's
    last words.
    """
    from workstation import scoring as sandbox

    package.resolved_paths()  # full-scale data missing: say so before anything runs
    cache = package.cache_dir()
    copy = Path(settings.PROTECTED_DIR) / "starts" / uuid.uuid4().hex
    sandbox.fresh_copy(package.populate, copy, protected=False)
    try:
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
        marker = sandbox.new_marker()
        result = sandbox.run(
            [sys.executable, str(copy / package.start), str(workspace), str(copy / CONFIGURATION_FILE)],
            cwd=workspace,
            timeout=START_TIMEOUT,
            memory_bytes=None,
            env={
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "HOME": str(copy),
                "LANG": "C.UTF-8",
                "PYTHONDONTWRITEBYTECODE": "1",
                sandbox.RESULT_MARKER_ENV: marker,
                **cpu_environment(package),
            },
            run_as=None,
        )
        if result.timed_out or result.returncode != 0:
            raise ConfigurationError(
                f"{package.slug} start failed: {result.stderr_tail(8) or 'timed out'}", field="configuration"
            )
        if cache is not None:
            # The scorer's user reads it through the `protected` group; the expert's shell can't.
            sandbox.protect_tree(cache.parent.parent)
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def _configurations(meta: dict[str, Any], where: Path) -> dict[str, Configuration]:
    out = {}
    for name, raw in (meta.get("configurations") or {}).items():
        if name not in CONFIGURATIONS:
            raise ConfigurationError(f"{where}: unknown configuration {name!r}.", field="configurations")
        out[name] = Configuration(
            name=name,
            starting_score=float(raw["starting_score"]),
            reference_score=float(raw["reference_score"]),
            measured_with=str(raw.get("measured_with", "")),
            note=str(raw.get("note", "")),
            starting_score_spread=_spread(raw, "starting_score_spread", where),
            reference_score_spread=_spread(raw, "reference_score_spread", where),
            params=dict(raw.get("params") or {}),
            paths={str(k): str(v) for k, v in (raw.get("paths") or {}).items()},
            settings={str(k): str(v) for k, v in (raw.get("settings") or {}).items()},
        )
    return out


def _spread(raw: dict[str, Any], key: str, where: Path) -> float | None:
    if raw.get(key) is None:
        return None
    value = float(raw[key])
    if not value >= 0:
        raise ConfigurationError(f"{where}: {key} must be a number of at least 0, not {raw[key]!r}.", field=key)
    return value


def _load(root: Path) -> EnvironmentPackage | None:
    meta_path = root / "metadata.yaml"
    if not meta_path.is_file():
        return None
    meta = yaml.safe_load(meta_path.read_text()) or {}
    known = {"slug", "scorer", "score_timeout_seconds", "memory_limit_gb", "configurations"}
    known |= {"start", "uses_common", "environment_variables", "workspace_files", "harness", "scorer_network"}
    known |= {"version", "fidelity", "environment", "expert_model_key"}
    return EnvironmentPackage(
        slug=str(meta.get("slug") or root.name),
        root=root,
        scorer=str(meta.get("scorer", "scoring/score.py")),
        score_timeout_seconds=float(meta.get("score_timeout_seconds", settings.GRADING_SCORE_TIMEOUT_SECONDS)),
        memory_limit_gb=float(meta.get("memory_limit_gb", settings.GRADING_MEMORY_LIMIT_GB)),
        workspace_files=tuple(str(v) for v in meta.get("workspace_files") or ()),
        harness_folder=str(meta.get("harness") or ""),
        scorer_network="host" if meta.get("scorer_network") == "host" else "none",
        extra={k: v for k, v in meta.items() if k not in known},
        configurations=_configurations(meta, meta_path),
        start=str(meta.get("start") or ""),
        uses_common=bool(meta.get("uses_common", False)),
        environment_variables=tuple(str(v) for v in meta.get("environment_variables") or ()),
        expert_model_key=str(meta.get("expert_model_key") or ""),
        version=str(meta.get("version", "1")),
        fidelity=_fidelity(meta.get("fidelity")),
    )


def package_dirs() -> list[Path]:
    return [BUILTIN_DIR, *(Path(p) for p in settings.GRADING_PACKAGE_DIRS)]


def find_on_disk(slug: str) -> EnvironmentPackage | None:
    """The package folder for `slug` in the built-in or configured places (no database read)."""
    for base in package_dirs():
        candidate = base / slug
        if candidate.is_dir():
            package = _load(candidate)
            if package is not None:
                return package
    return None


def find(slug: str) -> EnvironmentPackage | None:
    """The package for `slug`: a folder in the built-in or configured places, or a registered Task Standard task."""
    if (package := find_on_disk(slug)) is not None:
        return package
    from environments import task_standard

    return task_standard.package_for(slug)


def copy_starting_solution(package: EnvironmentPackage, workspace: Path) -> list[str]:
    """Copy the starting files into `workspace`, never overwriting what the expert already wrote."""
    copied: list[str] = []
    workspace.mkdir(parents=True, exist_ok=True)
    if not package.solution_dir.is_dir():
        return copied
    for source in sorted(package.solution_dir.rglob("*")):
        target = workspace / source.relative_to(package.solution_dir)
        if source.is_dir():
            target.mkdir(exist_ok=True)
        elif not target.exists():
            shutil.copy2(source, target)
            copied.append(str(target.relative_to(workspace)))
    return copied
