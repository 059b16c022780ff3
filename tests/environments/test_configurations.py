"""Small/full configurations of environment packages: which one is active, what the scorer and start get."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from environments import packages, registry
from environments.models import Environment
from environments.services import environment_sync_registry

METADATA = """
slug: conf_pkg
scorer: scoring/score.py
start: start.py
uses_common: true
configurations:
  small:
    starting_score: 3.0
    reference_score: 1.0
    measured_with: "manage.py environment_measure conf_pkg"
    params: {n_layer: 1}
  full:
    starting_score: 5.0
    reference_score: 2.0
    measured_with: "RE-Bench v1"
    params: {n_layer: 12}
    paths: {weights: ENVIRONMENT_FIX_EMBEDDING_MODEL}
"""

START = """
import json, sys
from pathlib import Path
doc = json.loads(Path(sys.argv[2]).read_text())
Path(doc["cache_dir"], "built.txt").write_text(str(doc["params"]["n_layer"]))
Path(sys.argv[1], "given.json").write_text(json.dumps(doc))
"""


@pytest.fixture
def package_dir(tmp_path: Path, settings) -> Path:
    root = tmp_path / "pkgs" / "conf_pkg"
    (root / "scoring").mkdir(parents=True)
    (root / "solution").mkdir()
    (root / "metadata.yaml").write_text(METADATA)
    (root / "scoring" / "score.py").write_text("print('hi')\n")
    (root / "scoring" / "start.py").write_text(textwrap.dedent(START))
    (root / "solution" / "a.txt").write_text("start")
    settings.GRADING_PACKAGE_DIRS = [str(root.parent)]
    settings.ENVIRONMENT_CACHE_DIR = tmp_path / "cache"
    settings.PROTECTED_DIR = tmp_path / "protected"
    settings.ENVIRONMENT_CONFIGURATION = "small"
    settings.ENVIRONMENT_CONFIGURATION_OVERRIDES = {}
    return root


def test_the_small_configuration_is_active_by_default_and_carries_its_own_scores(package_dir: Path) -> None:
    package = packages.find("conf_pkg")
    assert package.configuration.name == "small"
    assert package.scores(9.0, 9.0) == (3.0, 1.0)
    assert package.configuration.measured_with.startswith("manage.py environment_measure")


def test_a_per_environment_override_picks_full_for_that_environment_only(package_dir: Path, settings) -> None:
    settings.ENVIRONMENT_CONFIGURATION_OVERRIDES = {"conf_pkg": "full"}
    assert packages.find("conf_pkg").configuration.name == "full"
    assert packages.active_configuration_name("ai_rd_fix_embedding") == "small"


def test_an_unknown_configuration_name_is_refused_naming_the_choices(package_dir: Path, settings) -> None:
    settings.ENVIRONMENT_CONFIGURATION = "medium"
    with pytest.raises(packages.ConfigurationError, match="small, full"):
        packages.find("conf_pkg").configuration  # noqa: B018 - the property is what raises


def test_the_scorer_copy_gets_the_active_configuration_and_the_common_code(package_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy"
    packages.find("conf_pkg").populate(target)
    document = json.loads((target / "configuration.json").read_text())
    assert document["name"] == "small"
    assert document["params"] == {"n_layer": 1}
    assert (target / "common" / "nanogpt.py").is_file()
    assert (target / "common" / "corpus.py").is_file()


def test_start_fills_the_staging_folder_and_the_configuration_cache(package_dir: Path, tmp_path: Path) -> None:
    package = packages.find("conf_pkg")
    staging = tmp_path / "staging"
    assert package.prepare_staging(staging) == ["a.txt"]
    given = json.loads((staging / "given.json").read_text())
    cache = package.cache_dir()
    assert cache is not None
    assert Path(given["cache_dir"]) == cache
    assert (cache / "built.txt").read_text() == "1"


def test_full_scale_without_its_data_setting_stops_the_start_naming_the_setting(
    package_dir: Path,
    tmp_path: Path,
    settings,
) -> None:
    settings.ENVIRONMENT_CONFIGURATION = "full"
    settings.ENVIRONMENT_FIX_EMBEDDING_MODEL = ""
    with pytest.raises(packages.ConfigurationError, match="needs ENVIRONMENT_FIX_EMBEDDING_MODEL"):
        packages.find("conf_pkg").prepare_staging(tmp_path / "staging")
    settings.ENVIRONMENT_FIX_EMBEDDING_MODEL = str(tmp_path / "nowhere.pth")
    with pytest.raises(packages.ConfigurationError, match="does not exist"):
        packages.find("conf_pkg").prepare_staging(tmp_path / "staging2")


def test_a_failing_start_script_is_an_error_with_its_last_words(package_dir: Path, tmp_path: Path) -> None:
    (package_dir / "scoring" / "start.py").write_text("raise SystemExit('no GPU here')\n")
    with pytest.raises(packages.ConfigurationError, match="no GPU here"):
        packages.find("conf_pkg").prepare_staging(tmp_path / "staging")


def test_environments_without_configurations_keep_rebench_numbers(db, settings) -> None:
    settings.ENVIRONMENT_CONFIGURATION = "small"
    environment_sync_registry()
    cumsum = Environment.objects.get(slug="ai_rd_triton_cumsum")
    assert cumsum.starting_score == registry.BY_SLUG["ai_rd_triton_cumsum"].starting_score
    assert cumsum.reference_score == registry.BY_SLUG["ai_rd_triton_cumsum"].reference_score


def test_the_environment_rows_follow_the_active_configuration(db, settings) -> None:
    settings.ENVIRONMENT_CONFIGURATION_OVERRIDES = {}
    settings.ENVIRONMENT_CONFIGURATION = "small"
    environment_sync_registry()
    small = packages.find("ai_rd_fix_embedding").configurations["small"]
    row = Environment.objects.get(slug="ai_rd_fix_embedding")
    assert (row.starting_score, row.reference_score) == (small.starting_score, small.reference_score)
    assert row.normalise(small.reference_score) == pytest.approx(1.0)

    settings.ENVIRONMENT_CONFIGURATION = "full"
    environment_sync_registry()
    row.refresh_from_db()
    rebench = registry.BY_SLUG["ai_rd_fix_embedding"]
    assert (row.starting_score, row.reference_score) == (rebench.starting_score, rebench.reference_score)


@pytest.mark.parametrize("slug", ["ai_rd_fix_embedding", "ai_rd_restricted_mlm", "ai_rd_optimize_llm_foundry"])
def test_each_full_configuration_carries_rebench_numbers_and_each_small_one_its_measuring_command(slug: str) -> None:
    package = packages.find(slug)
    full, small = package.configurations["full"], package.configurations["small"]
    assert (full.starting_score, full.reference_score) == (
        registry.BY_SLUG[slug].starting_score,
        registry.BY_SLUG[slug].reference_score,
    )
    # A wall-clock score is the median of several runs (`--runs N`).
    assert re.search(rf"environment_measure (--runs \d+ )?{slug}$", small.measured_with), small.measured_with
    assert small.reference_score < small.starting_score  # lower is better in all three
    assert full.paths  # full-scale data comes from settings


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["small", "full"])
def test_the_environment_page_shows_the_configuration_that_runs_here_with_its_own_constants(
    settings: Any, name: str
) -> None:
    from django.test import Client

    from environments.services import environment_configuration_for
    from tests import factories

    settings.ENVIRONMENT_CONFIGURATION = name
    environment_sync_registry()
    environment = Environment.objects.get(slug="ai_rd_fix_embedding")
    running = environment_configuration_for(environment=environment)
    assert running.name == name
    client = Client()
    client.force_login(factories.expert(username="ada"))
    page = client.get(f"/environments/{environment.slug}/").content.decode()
    assert f"<strong>{name} v{running.version}</strong>" in page
    start, reference = f"{running.starting_score:.4g}", f"{running.reference_score:.4g}"
    assert f"(raw − {start}) / ({reference} − {start})" in page
    # The small configuration's page also names RE-Bench's numbers, as such; full's are its own.
    assert ("RE-Bench's <code>full</code> task" in page) is (name == "small")
