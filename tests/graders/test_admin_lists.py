"""The admin's scoring-job and run-import lists: filters, search, pages of 50 whose links keep the filters,
a bounded number of queries whatever the rows, and a message (never a 500) for a value that is no filter's."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from environments.services import environment_configuration_for
from graders.imports.models import RunImport
from graders.models import ScoringJob
from tests import factories
from trials.models import Attempt

pytestmark = pytest.mark.django_db

JOBS = "/grading/jobs/"
IMPORTS = "/grading/imports/"


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response: Any) -> str:
    assert response.status_code == 200, response.content[:500]
    return html.unescape(response.content.decode())


def job_ids(page: str) -> list[str]:
    """The full ids of the jobs a page lists (each row's re-run form names its job)."""
    return list(dict.fromkeys(re.findall(r'name="job" value="([0-9a-f-]{36})"', page)))


def jobs_for(attempt: Attempt, n: int, **fields: Any) -> list[ScoringJob]:
    return ScoringJob.objects.bulk_create(
        [ScoringJob(attempt=attempt, queue_name=attempt.workstation.queue_name, **fields) for _ in range(n)]
    )


@pytest.fixture
def two_attempts(db):
    """Ada's attempt on cumsum at its active configuration (`full`), Grace's on nanogpt at `small`."""
    ada = factories.AttemptFactory.create(reservation__expert=factories.expert(username="ada"))
    chat = factories.environment("ai_rd_nanogpt_chat_rl")
    grace = factories.AttemptFactory.create(
        reservation__expert=factories.expert(username="grace"),
        reservation__environment=chat,
        configuration=environment_configuration_for(environment=chat, name="small"),
    )
    assert ada.configuration.name == "full"
    return ada, grace


# --- scoring jobs ------------------------------------------------------------------------------


def test_the_job_list_pages_by_50_in_the_same_number_of_queries_and_its_page_links_keep_the_filters(
    two_attempts, admin_user, django_assert_max_num_queries
) -> None:
    ada, grace = two_attempts
    jobs_for(ada, 3, status=ScoringJob.Status.DONE)
    client = client_for(admin_user)
    client.get(JOBS)  # warm the session
    with django_assert_max_num_queries(8):
        few = text(client.get(JOBS))
    assert len(job_ids(few)) == 3
    assert 'rel="next"' not in few

    jobs_for(ada, 60, status=ScoringJob.Status.FAILED)
    jobs_for(grace, 5, status=ScoringJob.Status.FAILED)
    with django_assert_max_num_queries(8):
        first = text(client.get(JOBS, {"status": "failed"}))

    assert "65 jobs match; page 1 of 2." in first
    assert len(job_ids(first)) == 50
    assert 'href="?status=failed&page=2" rel="next"' in first
    second = text(client.get(JOBS, {"status": "failed", "page": "2"}))
    assert len(job_ids(second)) == 15
    assert set(job_ids(first)).isdisjoint(job_ids(second))
    assert 'href="?status=failed&page=1" rel="prev"' in second


def test_the_job_list_filters_by_state_kind_environment_and_configuration(two_attempts, admin_user) -> None:
    ada, grace = two_attempts
    (ada_done,) = jobs_for(ada, 1, status=ScoringJob.Status.DONE)
    (ada_final,) = jobs_for(ada, 1, status=ScoringJob.Status.QUEUED, kind=ScoringJob.Kind.FINAL)
    (grace_failed,) = jobs_for(grace, 1, status=ScoringJob.Status.FAILED)
    client = client_for(admin_user)

    def listed(**query: str) -> set[str]:
        return set(job_ids(text(client.get(JOBS, query))))

    assert listed() == {str(ada_done.pk), str(ada_final.pk), str(grace_failed.pk)}
    assert listed(status="done") == {str(ada_done.pk)}
    assert listed(kind="final") == {str(ada_final.pk)}
    assert listed(environment="ai_rd_nanogpt_chat_rl") == {str(grace_failed.pk)}
    assert listed(configuration="small") == {str(grace_failed.pk)}
    assert listed(configuration="full") == {str(ada_done.pk), str(ada_final.pk)}
    assert listed(environment="ai_rd_triton_cumsum", status="failed") == set()
    page = text(client.get(JOBS, {"configuration": "small"}))
    assert '<option value="small" selected>small</option>' in page


def test_the_job_list_finds_a_job_by_expert_attempt_number_or_the_id_it_shows(two_attempts, admin_user) -> None:
    ada, grace = two_attempts
    (ada_job,) = jobs_for(ada, 1)
    (grace_job,) = jobs_for(grace, 1)
    client = client_for(admin_user)

    def listed(q: str) -> set[str]:
        return set(job_ids(text(client.get(JOBS, {"q": q}))))

    assert listed("GRAC") == {str(grace_job.pk)}
    assert listed(str(ada.pk)) == {str(ada_job.pk)}
    assert listed(str(grace_job.pk)[:8]) == {str(grace_job.pk)}  # the 8 hex digits the list shows
    assert listed(str(grace_job.pk).upper()) == {str(grace_job.pk)}
    assert "No scoring job matches." in text(client.get(JOBS, {"q": "nobody"}))


def test_a_bad_filter_page_or_search_on_the_job_list_says_so_and_lists_everything(two_attempts, admin_user) -> None:
    ada, _grace = two_attempts
    jobs_for(ada, 2)
    client = client_for(admin_user)

    page = text(client.get(JOBS, {"status": "exploded", "environment": "../etc", "page": "zzz"}))

    assert "No status 'exploded': showing every status." in page
    assert "No environment '../etc': showing every environment." in page
    assert len(job_ids(page)) == 2
    assert len(job_ids(text(client.get(JOBS, {"page": "99999999999999999999"})))) == 2  # past the end: the last
    # A number past any key (a bigint overflow) and a search longer than the box takes find nothing, not errors.
    assert "No scoring job matches." in text(client.get(JOBS, {"q": "9" * 30}))
    assert "No scoring job matches." in text(client.get(JOBS, {"q": "x" * 5000}))


def test_re_running_a_job_returns_to_the_filtered_page_it_was_done_from(two_attempts, admin_user) -> None:
    ada, _grace = two_attempts
    (job,) = jobs_for(ada, 1, status=ScoringJob.Status.DONE)
    client = client_for(admin_user)
    page = text(client.get(JOBS, {"status": "done", "q": "ada"}))
    assert 'name="back" value="status=done&q=ada&page=1"' in page

    response = client.post(f"{JOBS}rerun/", {"job": str(job.pk), "back": "status=done&q=ada&page=1"})
    assert response.status_code == 302
    assert response["Location"] == f"{JOBS}?status=done&q=ada&page=1"
    assert ScoringJob.objects.filter(rerun_of=job).exists()

    # What comes back is re-read as the list's own filters: nothing else passes through.
    response = client.post(f"{JOBS}close/", {"job": str(job.pk), "back": "status=bogus&next=//evil.test&page=x"})
    assert response["Location"] == JOBS


@pytest.mark.parametrize("url", [JOBS, IMPORTS])
def test_a_submitted_filter_form_lands_on_an_address_naming_only_what_it_filters_by(url: str, admin_user) -> None:
    client = client_for(admin_user)
    # What the form sends: every field, the unset ones empty.
    response = client.get(url, {"status": "done", "kind": "", "format": "", "configuration": "", "q": "", "page": "2"})
    assert response.status_code == 302
    assert response["Location"] == f"{url}?status=done&page=2"
    assert client.get(url, {"q": "", "page": ""})["Location"] == url
    assert client.get(url, {"status": "done"}).status_code == 200


@pytest.mark.parametrize("query", ["", "?status=failed&q=ada&page=2"])
def test_only_admins_see_the_job_list(query: str, expert, reviewer, admin_user) -> None:
    harness = factories.UserFactory.create(username="bot", roles=["harness"])
    for user in (expert, reviewer, harness):
        assert client_for(user).get(JOBS + query).status_code == 403
    assert Client().get(JOBS + query).status_code == 302  # anonymous: to the login page
    assert client_for(admin_user).get(JOBS + query).status_code == 200


# --- run imports -------------------------------------------------------------------------------


def stored_import(by: Any, name: str, **fields: Any) -> RunImport:
    run_import = RunImport(original_name=name, size_bytes=10, created_by=by, **fields)
    run_import.file.save(name, ContentFile(b"{}\n"), save=False)
    run_import.save()
    return run_import


def import_ids(page: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'<td><a href="/grading/imports/(\d+)/">', page)}


def test_the_import_list_pages_by_50_and_the_polled_rows_keep_the_filters_and_the_page(
    admin_user, django_assert_max_num_queries
) -> None:
    for i in range(55):
        stored_import(admin_user, f"metr-{i}.jsonl", detected_kind=RunImport.Kind.METR_RUNS)
    stored_import(admin_user, "ours.jsonl", detected_kind=RunImport.Kind.FILE, status=RunImport.Status.DONE)
    client = client_for(admin_user)
    client.get(IMPORTS)  # warm the session

    with django_assert_max_num_queries(8):
        first = text(client.get(IMPORTS, {"format": "metr_runs"}))

    assert "55 imports match; page 1 of 2." in first
    assert len(import_ids(first)) == 50
    assert 'href="?format=metr_runs&page=2" rel="next"' in first
    # Queued imports on the page: its rows poll, for the same filters and the same page.
    assert 'hx-get="/grading/imports/_rows/?format=metr_runs&page=1"' in first
    with django_assert_max_num_queries(6):
        rows = text(client.get(f"{IMPORTS}_rows/", {"format": "metr_runs", "page": "2"}))
    assert len(import_ids(rows)) == 5
    assert "ours.jsonl" not in rows
    assert 'hx-get="/grading/imports/_rows/?format=metr_runs&page=2"' in rows


def test_the_import_list_filters_by_state_format_and_configuration_and_searches_file_uploader_and_number(
    admin_user,
) -> None:
    other_admin = factories.admin(username="margaret")
    metr = stored_import(admin_user, "metr.jsonl", detected_kind=RunImport.Kind.METR_RUNS, status="done")
    asked = stored_import(admin_user, "queued.eval", kind=RunImport.Kind.INSPECT)  # not read yet
    small = stored_import(other_admin, "small-runs.csv", detected_kind=RunImport.Kind.FILE, configuration="small")
    client = client_for(admin_user)

    def listed(**query: str) -> set[int]:
        return import_ids(text(client.get(IMPORTS, query)))

    assert listed() == {metr.pk, asked.pk, small.pk}
    assert listed(status="done") == {metr.pk}
    assert listed(format="inspect") == {asked.pk}
    assert listed(format="file") == {small.pk}
    assert listed(configuration="small") == {small.pk}
    assert listed(configuration="full") == {metr.pk, asked.pk}
    assert listed(q="SMALL-RUNS") == {small.pk}
    assert listed(q="margaret") == {small.pk}
    assert listed(q=str(asked.pk)) == {asked.pk}
    assert "No import matches." in text(client.get(IMPORTS, {"q": "nothing-like-it"}))


def test_a_bad_filter_on_the_import_list_says_so_once_and_lists_everything(admin_user) -> None:
    stored_import(admin_user, "a.jsonl")
    client = client_for(admin_user)

    page = text(client.get(IMPORTS, {"format": "auto", "configuration": "huge", "page": "-1"}))

    assert "No format 'auto': showing every format." in page
    assert "No configuration 'huge': showing every configuration." in page
    assert len(import_ids(page)) == 1
    # The polled rows say nothing (the page said it once) and still answer.
    rows = client.get(f"{IMPORTS}_rows/", {"status": "exploded"})
    assert len(import_ids(text(rows))) == 1
    assert "showing every" not in text(client.get(IMPORTS))


@pytest.mark.parametrize("url", [IMPORTS, f"{IMPORTS}_rows/"])
def test_only_admins_see_the_filtered_import_list(url: str, expert, reviewer, admin_user) -> None:
    query = "?status=done&format=file&q=runs&page=2"
    for user in (expert, reviewer):
        assert client_for(user).get(url + query).status_code == 403
    assert client_for(admin_user).get(url + query).status_code == 200
