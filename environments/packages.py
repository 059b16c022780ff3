"""Environment packages on disk: instructions, starting and reference solutions, scorer and grading metadata."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.conf import settings

BUILTIN_DIR = Path(__file__).resolve().parent
DEFAULT_SCORE_TIMEOUT = 600


@dataclass(frozen=True)
class EnvironmentPackage:
    slug: str
    root: Path
    scorer: str = "scoring/score.py"
    score_timeout_seconds: float = DEFAULT_SCORE_TIMEOUT
    memory_limit_gb: float = 16
    memory_rlimit: str = "as"  # "data" for GPU scorers: see graders.sandbox
    extra: dict = field(default_factory=dict)

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
        return []

    def populate(self, target: Path) -> None:
        """Fill the scorer's protected folder: the package's scoring folder."""
        shutil.copytree(self.scoring_dir, target)

    def scorer_argv(
        self, python: str, protected_copy: Path, workspace: Path, *, final: bool = False, context: dict | None = None
    ) -> list[str]:
        return [python, str(protected_copy / Path(self.scorer).name), str(workspace)]

    def prepare_workspace(self, workspace: Path) -> list[str]:
        return copy_starting_solution(self, workspace)


def _load(root: Path) -> EnvironmentPackage | None:
    meta_path = root / "metadata.yaml"
    if not meta_path.is_file():
        return None
    meta = yaml.safe_load(meta_path.read_text()) or {}
    known = {"slug", "scorer", "score_timeout_seconds", "memory_limit_gb", "memory_rlimit"}
    return EnvironmentPackage(
        slug=str(meta.get("slug") or root.name),
        root=root,
        scorer=str(meta.get("scorer", "scoring/score.py")),
        score_timeout_seconds=float(meta.get("score_timeout_seconds", settings.GRADING_SCORE_TIMEOUT_SECONDS)),
        memory_limit_gb=float(meta.get("memory_limit_gb", settings.GRADING_MEMORY_LIMIT_GB)),
        memory_rlimit="data" if meta.get("memory_rlimit") == "data" else "as",
        extra={k: v for k, v in meta.items() if k not in known},
    )


def package_dirs() -> list[Path]:
    return [BUILTIN_DIR, *(Path(p) for p in settings.GRADING_PACKAGE_DIRS)]


def find(slug: str) -> EnvironmentPackage | None:
    """The package for `slug`: a folder in the built-in or configured places, or a registered Task Standard task."""
    for base in package_dirs():
        candidate = base / slug
        if candidate.is_dir():
            package = _load(candidate)
            if package is not None:
                return package
    from environments import task_standard

    return task_standard.package_for(slug)


def copy_starting_solution(package: EnvironmentPackage, workspace: Path) -> list[str]:
    """Copy the starting files into `workspace`, never overwriting what the expert already wrote."""
    copied = []
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
