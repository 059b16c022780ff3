"""The manual: it builds with no warning, names every setting, and points at nothing outside the repository."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SETTINGS = ROOT / "rebench_site" / "settings"
# The helpers the settings modules read the environment with; their first argument is the variable's name.
ENV_HELPERS = re.compile(r"^env_\w+$")
# Variables read by prefix rather than by name, and the name the settings page gives them.
PREFIXED = {"ENVIRONMENT_CONFIGURATION_": "ENVIRONMENT_CONFIGURATION_<SLUG>"}
# Design notes and the benchmark's text live beside the repository, not in it: a clone has no such files.
OUTSIDE = re.compile(r"\.\./shared|shared/DESIGN|shared/REBENCH")
BUILD_SECONDS = 120


def settings_source() -> str:
    """The source of every module of the rebench_site.settings package."""
    return "\n".join(path.read_text() for path in sorted(SETTINGS.glob("*.py")))


def settings_variables() -> set[str]:
    """Every environment variable the rebench_site/settings/ package reads, found in its source."""
    names: set[str] = set()
    modules = [ast.parse(path.read_text()) for path in sorted(SETTINGS.glob("*.py"))]
    for node in (node for module in modules for node in ast.walk(module)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        # os.environ.get("X") and os.getenv("X") as well as the env_* helpers.
        if not (ENV_HELPERS.match(called) or called in {"get", "getenv"}):
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.isupper():
            names.add(first.value)
    return names


def test_the_scan_finds_the_settings_it_should() -> None:
    """Guards the parser: a rewrite of the settings that hid their reads from it would pass the next test vacuously."""
    found = settings_variables()
    assert {"DEBUG", "SECRET_KEY", "DATABASE_URL", "SANDBOX_ALLOW_UNSAFE", "CLASSIFIER_QUEUE"} <= found
    assert len(found) > 100


def test_the_settings_page_names_every_variable_the_settings_read() -> None:
    page = (DOCS / "settings.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]*(?:<SLUG>)?)`", page))
    missing = sorted(settings_variables() - documented)
    assert not missing, f"docs/settings.md doesn't name {', '.join(missing)}: add a row for each"
    source = settings_source()
    for prefix, documented_as in PREFIXED.items():
        assert prefix in source
        assert documented_as in documented, f"docs/settings.md doesn't name {documented_as}"


def test_nothing_in_the_readme_or_the_manual_points_outside_the_repository() -> None:
    files = [ROOT / "README.md", ROOT / "mkdocs.yml", *sorted(DOCS.rglob("*.md"))]
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "these lines point outside the repository:\n" + "\n".join(hits)


def test_every_page_is_in_the_navigation() -> None:
    """mkdocs only warns (which the strict build turns into a failure) about pages left out of `nav`;
    this names them without a build."""
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md"))
    missing = [page for page in pages if f": {page}" not in nav]
    assert not missing, f"pages missing from mkdocs.yml's nav: {', '.join(missing)}"


@pytest.mark.timeout(BUILD_SECONDS + 30)
def test_the_manual_builds_strictly_with_no_warning(tmp_path: Path) -> None:
    assert importlib.util.find_spec("mkdocs"), "no mkdocs here: `make test` installs it (requirements-docs.txt)"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner about its successor, not a warning about us
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_SECONDS,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    warnings = [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line]
    assert not warnings, "\n".join(warnings)
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "settings" / "index.html").is_file()
