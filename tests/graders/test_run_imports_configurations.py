"""Imports say what scale they are: each run records its configuration, METR runs are full by definition,
an unknown configuration is refused naming the field, and the upload is gone once the import is over."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from rest_framework.test import APIClient

from graders.imports import services
from graders.imports.models import RunImport
from graders.imports.services import writing
from tests import factories
from tests.graders.run_import_support import metr_row
from trials.models import Attempt

pytestmark = pytest.mark.django_db
CHAT_RL = "ai_rd_nanogpt_chat_rl"


@pytest.fixture(autouse=True)
def _site_runs_small(db, settings, tmp_path):
    # The embedded default: the site's workstations run small. No import may be read at that scale by accident.
    settings.ENVIRONMENT_CONFIGURATION = "small"
    settings.ENVIRONMENT_CONFIGURATION_OVERRIDES = {}
    settings.MEDIA_ROOT = tmp_path / "media"
    factories.environment()


def _import(body: bytes, name: str, *, configuration: str = "full", kind: str = "auto") -> RunImport:
    run_import = RunImport(
        original_name=name, size_bytes=len(body), kind=kind, configuration=configuration, created_by=None
    )
    run_import.file.save(name, ContentFile(body), save=False)
    run_import.save()
    return services.run_import_execute(run_import_id=run_import.pk)


def _jsonl(*rows: dict[str, Any]) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


def _own(run_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "environment": CHAT_RL,
        "participant_kind": "agent",
        "agent_name": "a",
        "time_limit_seconds": 28800,
        "elapsed_seconds": 3600,
        "score": 0.65,
        **fields,
    }


def test_a_metr_score_cont_of_one_half_stays_one_half_whatever_the_site_runs() -> None:
    done = _import(_jsonl(metr_row("m1", task_id=f"{CHAT_RL}/main", task_family=CHAT_RL, score_cont=0.5)), "m.jsonl")

    assert done.status == RunImport.Status.DONE, done.error
    run = Attempt.objects.get(external_id="m1")
    assert run.configuration.label == "full v1"
    # By hand: raw = 0.54 + 0.5 × (0.85 − 0.54) = 0.695, and (0.695 − 0.54)/0.31 = 0.5 again.
    assert run.final_score.raw == pytest.approx(0.695)
    assert run.final_score.normalised == pytest.approx(0.5)


def test_metr_runs_imported_as_small_are_refused_naming_the_configuration() -> None:
    refused = _import(_jsonl(metr_row("m1")), "m.jsonl", configuration="small")

    assert refused.status == RunImport.Status.FAILED
    assert refused.error_field == "configuration"
    assert "full" in refused.error
    assert not Attempt.objects.exists()


def test_our_jsonl_takes_the_rows_configuration_and_else_the_imports() -> None:
    body = _jsonl(_own("named", configuration="small"), _own("unnamed"))
    done = _import(body, "runs.jsonl", configuration="full")

    assert done.status == RunImport.Status.DONE, done.error
    named, unnamed = Attempt.objects.get(external_id="named"), Attempt.objects.get(external_id="unnamed")
    assert (named.configuration.name, unnamed.configuration.name) == ("small", "full")
    assert named.final_score.normalised == pytest.approx((0.65 - 0.5) / 0.375)  # small: 0.5 → 0.875
    assert unnamed.final_score.normalised == pytest.approx((0.65 - 0.54) / 0.31)  # full: 0.54 → 0.85


def test_a_csv_without_a_configuration_column_takes_the_one_the_import_names() -> None:
    body = (
        b"run_id,environment,time_limit_seconds,elapsed_seconds,score,agent_name\r\n"
        b"c1,ai_rd_nanogpt_chat_rl,28800,60,0.8,a\r\n"
    )
    done = _import(body, "runs.csv", configuration="small")

    assert done.status == RunImport.Status.DONE, done.error
    assert Attempt.objects.get(external_id="c1").configuration.name == "small"


def test_an_unknown_configuration_is_refused_with_its_line_and_field_and_writes_nothing() -> None:
    refused = _import(_jsonl(_own("ok"), _own("bad", configuration="huge")), "runs.jsonl")

    assert refused.status == RunImport.Status.FAILED
    assert (refused.error_line, refused.error_field) == (2, "configuration")
    assert "huge" in refused.error
    assert not Attempt.objects.exists()


def test_a_malformed_configuration_name_is_refused_before_anything_is_stored() -> None:
    with pytest.raises(services.ServiceError) as refused:
        services.run_import_create(
            upload=ContentFile(b"{}"), name="x.jsonl", size=2, configuration="../../etc", by=None, queue=False
        )
    assert refused.value.field == "configuration"
    assert not RunImport.objects.exists()


@pytest.mark.parametrize("body", [_jsonl(_own("fine")), b"not json at all\n"], ids=["done", "refused"])
def test_the_uploaded_file_is_deleted_once_the_import_is_over(body: bytes) -> None:
    run_import = RunImport(original_name="r.jsonl", size_bytes=len(body), kind="file", created_by=None)
    run_import.file.save("r.jsonl", ContentFile(body), save=False)
    run_import.save()
    stored = Path(run_import.file.path)
    assert stored.exists()

    finished = services.run_import_execute(run_import_id=run_import.pk)

    assert finished.is_finished
    assert not stored.exists()
    assert not finished.file
    assert finished.original_name == "r.jsonl"  # the row still says what was imported


def test_an_api_run_names_its_configuration_and_an_unknown_one_is_a_400_naming_it() -> None:
    harness = factories.UserFactory.create(roles=["harness"])
    client = APIClient()
    client.force_authenticate(harness)
    base = {"environment": CHAT_RL, "agent_name": "a", "time_limit_seconds": 3600}

    created = client.post("/api/runs/", {**base, "run_id": "s", "configuration": "small"}, format="json")
    default = client.post("/api/runs/", {**base, "run_id": "f"}, format="json")
    unknown = client.post("/api/runs/", {**base, "run_id": "u", "configuration": "huge"}, format="json")

    assert (created.status_code, created.json()["configuration"]) == (201, "small v1")
    assert default.json()["configuration"] == "full v1"
    assert unknown.status_code == 400
    assert "configuration" in unknown.json()
    assert not Attempt.objects.filter(external_id="u").exists()


def test_copy_and_bulk_create_write_the_same_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    from graders.models import AttemptScore, ScoreLogEntry

    log = [{"elapsed_seconds": 60, "score": 0.6, "message": "first"}, {"elapsed_seconds": 120, "score": None}]

    def imported(prefix: str, copy: bool) -> list[tuple[Any, ...]]:
        monkeypatch.setattr(writing, "COPY_ROWS", copy)
        rows = [_own(f"{prefix}{i}", score_log=log, started_at="2026-10-01T09:00:00+00:00") for i in range(3)]
        assert _import(_jsonl(*rows), f"{prefix}.jsonl").status == RunImport.Status.DONE
        entries = ScoreLogEntry.objects.filter(attempt__external_id__startswith=prefix).order_by(
            "attempt__external_id", "pk"
        )
        scores = AttemptScore.objects.filter(attempt__external_id__startswith=prefix).order_by("attempt__external_id")
        return (
            [
                (
                    e.attempt.external_id[len(prefix) :],
                    e.scored_at,
                    e.elapsed_seconds,
                    e.score,
                    e.message,
                    e.details,
                    e.job_id,
                )
                for e in entries
            ]
            + [(s.attempt.external_id[len(prefix) :], s.raw, s.normalised, s.valid_entries, s.is_final) for s in scores]
            + [
                (
                    a.external_id[len(prefix) :],
                    a.participant_kind,
                    a.status,
                    a.end_reason,
                    a.source,
                    a.agent_name,
                    a.time_limit,
                    a.started_at,
                    a.ended_at,
                    a.configuration_id,
                    a.environment_id,
                    a.created_at is not None,
                )
                for a in Attempt.objects.filter(external_id__startswith=prefix).order_by("external_id")
            ]
        )

    assert imported("copy-", True) == imported("bulk-", False)
