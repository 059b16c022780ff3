"""End-to-end helpers for environment packages: a real Celery worker prepares, scores; scorers run directly."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from celery import Celery
from django.conf import settings
from django.test import override_settings

from environments import measure, packages
from graders import services
from graders.models import ScoreLogEntry
from tests import parallel
from tests.trials.celery_support import running_worker, using_broker, wait_for
from tests.workspace_support import give_to_owner
from trials.models import Attempt
from workstation import scoring as sandbox

# Trained models and corpora outlive a test run (they are keyed by their configuration): the
# second run reuses them, as a workstation does. Under DATA_DIR, which the scorer's user can enter;
# parallel workers share the one of the run (tests/parallel.py).
CACHE_DIR = Path(os.environ.get(parallel.SHARED_DATA_ENV, settings.DATA_DIR)) / "test-environment-cache"


@pytest.fixture
def small_configuration(settings):
    settings.ENVIRONMENT_CONFIGURATION = "small"
    settings.ENVIRONMENT_CONFIGURATION_OVERRIDES = {}
    settings.ENVIRONMENT_CACHE_DIR = CACHE_DIR
    return settings


@contextmanager
def worker_for(attempt: Attempt, tmp_path: Path) -> Iterator[Celery]:
    """A real worker on the attempt's workstation queue, on the embedded (SQLAlchemy) broker."""
    with (
        using_broker(f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}") as app,
        running_worker(app, queues=[attempt.workstation.queue_name]),
    ):
        yield app


def entries(attempt: Attempt) -> list[ScoreLogEntry]:
    return list(ScoreLogEntry.objects.filter(attempt=attempt).order_by("scored_at", "pk"))


def wait_for_entries(attempt: Attempt, count: int, timeout: float = 90) -> list[ScoreLogEntry]:
    assert wait_for(lambda: len(entries(attempt)) >= count, timeout=timeout), [e.message for e in entries(attempt)]
    return entries(attempt)


def score_now(attempt: Attempt, count: int) -> ScoreLogEntry:
    """The expert presses Score; the worker writes entry number `count`."""
    assert attempt.user is not None
    services.scoring_job_request(attempt=attempt, by=attempt.user)
    return wait_for_entries(attempt, count)[-1]


def run_in_workspace(workspace: Path, *argv: str, timeout: float = 120) -> None:
    """What the expert runs in the shell (as root here; the files are handed to the workspace's owner).

    With the CPU arithmetic pinned as `environment_measure` pins it for a reference: a reference run
    here scores the measured constant on any x86-64 machine with AVX2, whatever its own kernels.
    """
    argv = tuple(sys.executable if a == "python" else a for a in argv)
    env = {**os.environ, **packages.REPRODUCIBLE_CPU_ENVIRONMENT}
    subprocess.run(argv, cwd=workspace, check=True, timeout=timeout, capture_output=True, env=env)
    give_to_owner(workspace)


def copy_into(source: Path, workspace: Path) -> None:
    shutil.copytree(source, workspace, dirs_exist_ok=True)
    give_to_owner(workspace)


# The module names a scorer copy brings (and a workspace's model.py): forgotten before and after each run.
SCORER_MODULES: tuple[str, ...] = ("score", "task", "restricted", "model", "common", "common.nanogpt", "common.corpus")
SCORER_MODULES += ("common.checkpoints", "chat", "judging")


def run_scorer(slug: str, workspace: Path, scratch: Path) -> dict[str, Any]:
    """The package's own scorer code, from a populated copy, called in this process.

    For the many fault cases: the scorer's subprocess costs a torch import each (seconds on a busy
    machine); the end-to-end tests run it as the worker does.
    """
    package = packages.find(slug)
    copy = scratch / f"scorer-{uuid.uuid4().hex[:8]}"
    sandbox.fresh_copy(package.populate, copy, protected=False)
    saved = list(sys.path)
    _forget_scorer_modules()
    sys.path.insert(0, str(copy))
    code = copy / package.harness_folder if package.harness_folder else None
    # The expert's part runs through the harness: here measure's unsandboxed stand-in for the workstation's.
    with measure.local_harness(workspace, code=code) as harness_env, _environment(harness_env):
        try:
            spec = importlib.util.spec_from_file_location("score", copy / Path(package.scorer).name)
            assert spec is not None
            assert spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            result = module.main(workspace)
        finally:
            sys.path[:] = saved
            _forget_scorer_modules()
    return {"details": {}, **result}


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _forget_scorer_modules() -> None:
    for name in SCORER_MODULES:
        sys.modules.pop(name, None)


def prepared_workspace(slug: str, folder: Path) -> Path:
    """`folder`, made and filled by `slug`'s start under the settings in force (its configuration)."""
    folder.mkdir()
    packages.find(slug).prepare_staging(folder)
    return folder


@contextmanager
def started_template(slug: str, scratch: Path) -> Iterator[Path]:
    """A workspace started once (small configuration) for a module's fault tests to copy."""
    with override_settings(
        ENVIRONMENT_CONFIGURATION="small",
        ENVIRONMENT_CONFIGURATION_OVERRIDES={},
        ENVIRONMENT_CACHE_DIR=CACHE_DIR,
        PROTECTED_DIR=scratch / "protected",
    ):
        workspace = scratch / "template"
        workspace.mkdir(parents=True, exist_ok=True)
        packages.find(slug).prepare_staging(workspace)
        yield workspace


def dump(value: object) -> str:
    return json.dumps(value, default=str)


def load_module(name: str, path: Path) -> ModuleType:
    """Import a package's script (a judge, a problem generator) by path, as the tests drive it directly."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
