"""An admin's run import is a file from outside: a zip bomb dressed as an Inspect .eval log is refused
from the archive's directory, before anything is inflated, and the worker's memory stays where it was."""

from __future__ import annotations

import resource
import zipfile
from pathlib import Path
from typing import Any

import pytest

from graders.imports import services
from graders.imports.models import RunImport
from tests import factories
from tests.graders.run_import_support import write_inspect_log
from trials.models import Attempt

pytestmark = pytest.mark.django_db


def bomb(path: Path, members: int, size: int) -> Path:
    """A real Inspect log (inspect_ai reads it) with `members` more samples of `size` spaces each: a
    few hundred KB on disk; JSON reads the spaces whole before finding nothing after them."""
    write_inspect_log(path.parent, environment="ai_rd_triton_cumsum").rename(path)
    chunk = b" " * (1024 * 1024)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for index in range(members):
            with archive.open(f"samples/bomb{index}_epoch_1.json", "w", force_zip64=True) as member:
                for _ in range(size // len(chunk)):
                    member.write(chunk)
    return path


def imported(path: Path) -> RunImport:
    with path.open("rb") as handle:
        created = services.run_import_create(
            upload=handle, name=path.name, size=path.stat().st_size, kind="auto", by=None, queue=False
        )
    return services.run_import_execute(run_import_id=created.pk)


def test_a_zip_bomb_eval_log_is_refused_before_it_is_inflated(tmp_path: Path, settings: Any) -> None:
    factories.environment()
    settings.MEDIA_ROOT = tmp_path / "media"
    path = bomb(tmp_path / "bomb.eval", members=4, size=200 * 1024 * 1024)  # 800 MB of zeros
    assert path.stat().st_size < 1024 * 1024
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, the high-water mark
    result = imported(path)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 50, f"the import raised this process's peak memory by {grown_mib:.0f} MiB"
    assert result.status == "failed"
    assert result.error_field == "file"
    assert "times its packed size" in result.error
    assert not Attempt.objects.exists()


def test_a_member_larger_than_the_limit_is_refused_even_when_it_compresses_like_a_log(
    tmp_path: Path, settings: Any
) -> None:
    factories.environment()
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.RUN_IMPORT_MAX_MEMBER_BYTES = 4 * 1024 * 1024
    settings.RUN_IMPORT_MAX_ZIP_RATIO = 10**9
    result = imported(bomb(tmp_path / "big.eval", members=1, size=8 * 1024 * 1024))
    assert result.status == "failed"
    assert "unpacks to 8,388,608 bytes; the limit is 4,194,304" in result.error
