"""What an SSH workstation gets: the sandbox package whole, importable there as `rebench_sandbox`."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

from workstation import layout
from workstation.backends.ssh import _tools_archive


def test_the_archive_holds_every_module_of_the_sandbox_package() -> None:
    with tarfile.open(fileobj=io.BytesIO(_tools_archive())) as archive:
        names = set(archive.getnames())
    modules = {
        f"lib/rebench_sandbox/{path.relative_to(layout.SANDBOX_PACKAGE)}"
        for path in layout.SANDBOX_PACKAGE.rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert modules, "no sandbox modules found"
    missing = sorted(modules - names)
    assert not missing, f"these modules would not reach an SSH workstation: {', '.join(missing)}"


def test_the_unpacked_package_imports_on_its_own(tmp_path: Path) -> None:
    """Unpacked away from the project, as on a workstation: every module it imports came in the archive."""
    with tarfile.open(fileobj=io.BytesIO(_tools_archive())) as archive:
        archive.extractall(tmp_path, filter="data")
    lib = tmp_path / "lib"
    probe = (
        f"import sys; sys.path.insert(0, {str(lib)!r}); import rebench_sandbox; "
        "from rebench_sandbox import cgroups; "
        "assert rebench_sandbox.__file__.startswith(sys.path[0]), rebench_sandbox.__file__; "
        "print(cgroups.V1.__module__, cgroups.V2.__module__, cgroups.Hierarchy.__module__)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "rebench_sandbox.cgroups_v1",
        "rebench_sandbox.cgroups_v2",
        "rebench_sandbox.cgroups_common",
    ]
