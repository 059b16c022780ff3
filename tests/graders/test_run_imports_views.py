"""The run-import pages: admins upload and follow imports (htmx polling); every other role is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from graders.imports import services
from graders.imports.models import RunImport
from tests import factories
from tests.graders.run_import_support import metr_row
from trials.models import Attempt

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    factories.environment()


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def jsonl(*rows: dict[str, Any]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def stored_import(by: Any, body: bytes, name: str = "runs.jsonl", **fields: Any) -> RunImport:
    run_import = RunImport(original_name=name, size_bytes=len(body), created_by=by, **fields)
    run_import.file.save(name, ContentFile(body), save=False)
    run_import.save()
    return run_import


def test_an_admin_uploads_a_file_and_lands_on_its_progress_page(
    admin_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    upload = SimpleUploadedFile("runs.jsonl", jsonl(metr_row("r1"), metr_row("r2")))
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(admin_user).post("/grading/imports/", {"file": upload, "kind": "auto"})

    run_import = RunImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/grading/imports/{run_import.pk}/"
    assert (run_import.status, run_import.created_by, run_import.original_name) == ("queued", admin_user, "runs.jsonl")
    assert len(callbacks) == 1  # the Celery job goes out after commit
    page = client_for(admin_user).get(response["Location"]).content.decode()
    assert "Queued" in page or "queued" in page
    assert 'hx-trigger="every 1s"' in page  # unfinished: the progress polls


def test_the_progress_partial_stops_polling_and_shows_the_result_once_done(admin_user: Any) -> None:
    run_import = stored_import(admin_user, jsonl(metr_row("r1"), metr_row("r2")))
    services.run_import_execute(run_import_id=run_import.pk)

    html = client_for(admin_user).get(f"/grading/imports/{run_import.pk}/_progress/").content.decode()

    assert "hx-trigger" not in html
    assert "2 new runs" in html
    assert "2 of 2 runs checked" in html


def test_a_refused_import_shows_the_line_and_field_and_that_nothing_was_written(admin_user: Any) -> None:
    run_import = stored_import(admin_user, jsonl(metr_row("r1"), metr_row("r2", task_family="ai_rd_nope", task_id="x")))
    services.run_import_execute(run_import_id=run_import.pk)

    html = client_for(admin_user).get(f"/grading/imports/{run_import.pk}/").content.decode()

    assert "line 2" in html
    assert "<code>task_family</code>" in html
    assert "Nothing from this file was written" in html
    assert not Attempt.objects.exists()


def test_a_file_over_the_limit_is_refused_on_the_upload_page(admin_user: Any, settings: Any) -> None:
    settings.RUN_IMPORT_MAX_BYTES = 100
    upload = SimpleUploadedFile("runs.jsonl", jsonl(metr_row("r1"), metr_row("r2")))

    response = client_for(admin_user).post("/grading/imports/", {"file": upload})

    assert response.status_code == 400
    assert "MiB" in response.content.decode()
    assert not RunImport.objects.exists()


def test_an_upload_without_a_file_is_a_form_error(admin_user: Any) -> None:
    response = client_for(admin_user).post("/grading/imports/", {"kind": "auto"})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert not RunImport.objects.exists()


def test_the_import_list_shows_each_import_in_a_fixed_number_of_queries(
    admin_user: Any, django_assert_max_num_queries: Any
) -> None:
    for i in range(12):
        stored_import(admin_user, jsonl(metr_row(f"r{i}")), name=f"runs-{i}.jsonl")
    client = client_for(admin_user)
    client.get("/grading/imports/")  # warm the session and role caches

    with django_assert_max_num_queries(8):
        response = client.get("/grading/imports/")

    assert response.status_code == 200
    assert response.content.decode().count("runs-") >= 12
    with django_assert_max_num_queries(6):
        rows = client.get("/grading/imports/_rows/")
    assert 'hx-trigger="every 1s"' in rows.content.decode()  # queued imports: the rows keep polling


@pytest.mark.parametrize("page", ["/grading/imports/", "/grading/imports/_rows/"])
def test_experts_reviewers_and_harnesses_are_refused_the_import_pages(page: str, expert: Any, reviewer: Any) -> None:
    harness = factories.UserFactory.create(username="bot", roles=["harness"])
    for user in (expert, reviewer, harness):
        assert client_for(user).get(page).status_code == 403
    assert Client().get(page).status_code == 302  # anonymous: to the login page


def test_an_expert_cannot_upload_runs(expert: Any) -> None:
    upload = SimpleUploadedFile("runs.jsonl", jsonl(metr_row("r1")))
    assert client_for(expert).post("/grading/imports/", {"file": upload}).status_code == 403
    assert not RunImport.objects.exists()


def test_the_admin_attempt_list_shows_imported_runs_by_their_label(admin_user: Any) -> None:
    services.run_import_execute(run_import_id=stored_import(admin_user, jsonl(metr_row("r1"))).pk)
    html = client_for(admin_user).get("/attempts/").content.decode()
    assert "Claude 3.5 Sonnet (New)" in html


def test_an_admin_opens_an_imported_runs_attempt_page_and_sees_its_score_log(admin_user: Any) -> None:
    services.run_import_execute(run_import_id=stored_import(admin_user, jsonl(metr_row("r1", score_cont=0.5))).pk)
    attempt = Attempt.objects.get()

    response = client_for(admin_user).get(f"/attempts/{attempt.pk}/")

    assert response.status_code == 200
    assert "imported from METR runs" in response.content.decode()


def test_admins_find_run_imports_in_the_navigation_and_experts_do_not(admin_user: Any, expert: Any) -> None:
    assert 'href="/grading/imports/"' in client_for(admin_user).get("/attempts/").content.decode()
    assert 'href="/grading/imports/"' not in client_for(expert).get("/my/").content.decode()


def test_an_upload_declared_over_the_limit_is_refused_before_its_body_is_read(admin_user: Any, settings: Any) -> None:
    settings.RUN_IMPORT_MAX_BYTES = 100
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    body = b"x" * (200 * 1024)  # over the limit plus the envelope allowance
    upload = SimpleUploadedFile("runs.jsonl", body)

    # No CSRF token: had the body been read for the CSRF check, this would be a 403.
    response = client.post("/grading/imports/", {"file": upload})

    assert response.status_code == 400
    assert "over the 0 MiB import limit" in response.content.decode()
    assert not RunImport.objects.exists()


def test_an_upload_without_its_csrf_token_is_refused(admin_user: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    upload = SimpleUploadedFile("runs.jsonl", jsonl(metr_row("r1")))
    assert client.post("/grading/imports/", {"file": upload}).status_code == 403
    assert not RunImport.objects.exists()


def test_a_refusal_names_its_line_and_field_once(admin_user: Any) -> None:
    run_import = stored_import(admin_user, jsonl(metr_row("r1"), metr_row("r2", task_family="nope", task_id="nope/x")))
    services.run_import_execute(run_import_id=run_import.pk)

    html = client_for(admin_user).get(f"/grading/imports/{run_import.pk}/_progress/").content.decode()
    error = html.split('id="run-import-error"')[1].split("</p>")[0]
    assert "line 2" in error
    assert "task_family" in error
    assert error.count("line 2") == 1
    assert error.count("task_family") == 1
