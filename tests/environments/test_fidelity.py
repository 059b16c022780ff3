"""Each built-in environment says how its `full` configuration compares with RE-Bench's task, on its page."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.test import Client

from environments import packages, registry
from environments.services import environment_sync_registry
from tests import factories

BUILTIN = [spec.slug for spec in registry.BUILTIN_ENVIRONMENTS]


@pytest.mark.parametrize("slug", BUILTIN)
def test_every_built_in_environment_has_a_whole_fidelity_table_with_the_constants_row(slug: str) -> None:
    raw = yaml.safe_load((Path(packages.BUILTIN_DIR) / slug / "metadata.yaml").read_text())["fidelity"]
    package = packages.find_on_disk(slug)
    assert package is not None
    # Every row written is a row read: none has a missing field or a `matches` outside yes/partly/no
    # (YAML's bare yes and no would be booleans, and the row would silently vanish).
    assert len(package.fidelity) == len(raw) >= 2
    assert {row.matches for row in package.fidelity} <= set(packages.FIDELITY_MATCHES)


def test_a_malformed_fidelity_row_is_left_out_not_a_broken_package() -> None:
    rows = [
        {"aspect": "a", "rebench": "b", "here": "c", "matches": "yes"},
        {"aspect": "a", "rebench": "b", "here": "c", "matches": True},
        {"aspect": "a", "rebench": "b", "matches": "no"},
        "not a row",
    ]
    assert [row.matches for row in packages._fidelity(rows)] == ["yes"]
    assert packages._fidelity({"aspect": "x"}) == ()


def test_the_restricted_mlm_constants_are_the_task_codes_not_the_readmes_rounding() -> None:
    import math

    spec = registry.BY_SLUG["ai_rd_restricted_mlm"]
    # RE-Bench's task code: baseline_score 7.636 and score_1_loss 4.636, offset 1.5 (its README: 7.64, 4.6).
    assert spec.starting_score == pytest.approx(math.log(7.636 - 1.5), abs=1e-12)
    assert spec.reference_score == pytest.approx(math.log(4.636 - 1.5), abs=1e-12)
    package = packages.find_on_disk("ai_rd_restricted_mlm")
    assert package is not None
    assert package.configurations["full"].reference_score == spec.reference_score


@pytest.mark.django_db
def test_the_environment_page_shows_its_fidelity_table_to_an_expert() -> None:
    environment_sync_registry()
    client = Client()
    client.force_login(factories.expert(username="ada"))
    page = client.get("/environments/ai_rd_fix_embedding/").content.decode()
    assert "How <code>full</code> compares with RE-Bench" in page
    assert '<tr data-matches="yes"><td>Corruption</td>' in page
    assert '<tr data-matches="partly"><td>Model shape</td>' in page
    assert "4 matches, 2 in part, 0 differ." in page


@pytest.mark.django_db
def test_the_environment_page_is_refused_without_a_login() -> None:
    environment_sync_registry()
    response = Client().get("/environments/ai_rd_fix_embedding/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_registry_is_discovered_from_the_manifests_in_their_order() -> None:
    slugs = [spec.slug for spec in registry.BUILTIN_ENVIRONMENTS]
    assert slugs[0] == "ai_rd_optimize_llm_foundry"
    assert len(slugs) == 7
    assert all(slug.startswith("ai_rd_") for slug in slugs)
    # RE-Bench's constants are written once: the `full` configuration's where there is one.
    for spec in registry.BUILTIN_ENVIRONMENTS:
        package = packages.find_on_disk(spec.slug)
        assert package is not None
        full = package.configurations.get("full")
        if full is not None:
            assert (spec.starting_score, spec.reference_score) == (full.starting_score, full.reference_score)


def test_a_manifest_missing_a_field_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metadata.yaml").write_text(
        "environment: {title: T, description: D, raw_score: r, direction: lower, aggregation: min,"
        " starting_score: 1, reference_score: 0, gpus_min: 0, gpus_max: 0, cpus: 1}\n"
    )
    with pytest.raises(registry.ManifestError, match=r"broken/metadata\.yaml: `environment` has no memory_gb"):
        registry.discover(tmp_path)
    (tmp_path / "broken" / "metadata.yaml").write_text(
        "environment: {title: T, description: D, raw_score: r, direction: sideways, aggregation: min}\n"
    )
    with pytest.raises(registry.ManifestError, match=r"environment\.direction is 'sideways'"):
        registry.discover(tmp_path)


@pytest.mark.django_db
def test_the_database_check_says_when_the_rows_differ_from_the_manifests() -> None:
    from environments.checks import environments_match_their_manifests
    from environments.models import Environment

    environment_sync_registry()
    assert environments_match_their_manifests(databases=["default"]) == []
    Environment.objects.filter(slug="ai_rd_restricted_mlm").update(reference_score=1.1314021114911004)
    [warning] = environments_match_their_manifests(databases=["default"])
    assert warning.id == "environments.W001"
    assert "ai_rd_restricted_mlm" in warning.msg
    assert "environment_sync" in (warning.hint or "")
    # A plain `check` (and a worker's start) names no database: it looks at none.
    assert environments_match_their_manifests() == []
    environment_sync_registry()
    assert environments_match_their_manifests(databases=["default"]) == []


def test_the_scorers_result_protocol_names_the_marker_the_worker_hands_out() -> None:
    from environments.common import result
    from workstation import scoring

    assert result.MARKER_ENV == scoring.RESULT_MARKER_ENV
