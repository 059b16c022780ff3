"""What the import tests by format share (test_run_imports_inspect, _metr_runs, _our_format, _command, _final_scores):
the environments synced, the import as the job runs it, and an imported run's score log.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from graders.imports import services
from graders.imports.models import RunImport
from tests import factories
from trials.models import Attempt

CHAT_RL = "ai_rd_nanogpt_chat_rl"  # higher is better, aggregate max: start 0.54, reference 0.85
CUMSUM = "ai_rd_triton_cumsum"  # lower is better, aggregate min


@pytest.fixture(autouse=True)
def _environments(db, settings, tmp_path):
    factories.environment()  # syncs all seven built-in environments
    settings.MEDIA_ROOT = tmp_path / "media"


def run_import(path: Path, kind: str = "auto") -> RunImport:
    """The import as the Celery job does it, minus the queue (the worker test covers that)."""
    with path.open("rb") as handle:
        created = services.run_import_create(
            upload=handle, name=path.name, size=path.stat().st_size, kind=kind, by=None, queue=False
        )
    return services.run_import_execute(run_import_id=created.pk)


def log_of(attempt: Attempt) -> list[tuple[float, float | None]]:
    return [(e.elapsed_seconds, e.score) for e in attempt.score_log.order_by("elapsed_seconds", "pk")]
