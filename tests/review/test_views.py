"""Review pages: allowed and refused roles, the labeling endpoints' answers, admin pages, query counts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from review import services
from review.models import Assignment, ImportJob, Label, ReviewQueue
from tests import factories

JSON: dict[str, Any] = {"HTTP_ACCEPT": "application/json"}


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def queue(completions, make_queue) -> ReviewQueue:
    completions(5)
    return make_queue(name="Stories", guideline="Label injury to a person as injurious.")


def test_labeling_page_leases_an_item_and_shows_the_guideline_blind(queue, reviewer) -> None:
    response = login(reviewer).get(reverse("review:label", args=[queue.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Label injury to a person as injurious." in body
    lease = Assignment.objects.get(reviewer=reviewer)
    assert f'data-assignment="{lease.pk}"' in body
    assert "classifier score" not in body
    assert "First round" not in body


def test_labeling_page_refuses_admins_experts_and_reviewers_outside_the_queue(
    completions, make_queue, reviewer, admin_user, expert
) -> None:
    completions(1)
    other = factories.reviewer(username="otto")
    queue = make_queue(all_reviewers=False, reviewers=[other])
    url = reverse("review:label", args=[queue.pk])
    assert login(reviewer).get(url).status_code == 403
    assert login(admin_user).get(url).status_code == 403
    assert login(expert).get(url).status_code == 403
    assert login(other).get(url).status_code == 200
    assert Client().get(url).status_code == 302


def test_label_endpoint_counts_a_double_click_once_and_names_the_field_on_bad_input(queue, reviewer) -> None:
    client = login(reviewer)
    lease = services.lease_next(queue=queue, reviewer=reviewer)
    url = reverse("review:label-submit", args=[queue.pk])
    first = client.post(url, {"assignment": lease.pk, "value": "safe", "seconds": "2.5"}, **JSON)
    second = client.post(url, {"assignment": lease.pk, "value": "safe", "seconds": "2.5"}, **JSON)
    assert first.status_code == second.status_code == 200
    assert first.json()["created"] is True
    assert second.json()["created"] is False
    assert Label.objects.count() == 1
    assert first.json()["throughput"]["today"] == 1
    bad = client.post(url, {"assignment": lease.pk, "value": "injurious"}, **JSON)
    assert bad.status_code == 400
    assert bad.json()["field"] == "value"
    none = client.post(url, {"value": "safe"}, **JSON)
    assert none.status_code == 400
    assert none.json()["field"] == "assignment"
    assert Label.objects.count() == 1


def test_a_plain_form_post_redirects_back_with_the_error_as_a_message(queue, reviewer) -> None:
    client = login(reviewer)
    response = client.post(
        reverse("review:label-submit", args=[queue.pk]), {"assignment": 999999, "value": "safe"}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("review:label", args=[queue.pk])
    assert "you hold no lease on this item" in response.content.decode()


def test_next_partial_prefetches_a_second_item_and_undo_returns_the_item_html(queue, reviewer) -> None:
    client = login(reviewer)
    client.get(reverse("review:label", args=[queue.pk]))
    current = Assignment.objects.get(reviewer=reviewer)
    response = client.get(reverse("review:item-next", args=[queue.pk]), {"exclude": current.pk})
    assert response.status_code == 200
    prefetched = Assignment.objects.exclude(pk=current.pk).get(reviewer=reviewer)
    assert f'data-assignment="{prefetched.pk}"' in response.content.decode()
    label = client.post(
        reverse("review:label-submit", args=[queue.pk]), {"assignment": current.pk, "value": "unsure"}, **JSON
    ).json()
    undone = client.post(reverse("review:label-undo", args=[queue.pk]), {"label": label["label"]}, **JSON)
    assert undone.status_code == 200
    assert f'data-assignment="{current.pk}"' in undone.json()["html"]
    stale = client.post(reverse("review:label-undo", args=[queue.pk]), {"label": label["label"]}, **JSON)
    assert stale.status_code == 400
    assert stale.json()["code"] == "stale"
    renewed = client.post(
        reverse("review:lease-renew", args=[queue.pk]), {"assignment": [current.pk, prefetched.pk]}, **JSON
    ).json()
    assert set(renewed["leases"]) == {str(current.pk), str(prefetched.pk)}
    assert all(renewed["leases"].values())
    released = client.post(reverse("review:lease-release", args=[queue.pk]), {"assignment": prefetched.pk}, **JSON)
    assert released.status_code == 200
    skipped = client.post(reverse("review:label-skip", args=[queue.pk]), {"assignment": current.pk}, **JSON)
    assert skipped.status_code == 200
    assert Assignment.objects.get(pk=current.pk).state == "skipped"


def test_adjudication_items_show_the_first_round(completions, make_queue, reviewers) -> None:
    completions(1)
    queue = make_queue(overlap=2)
    for reviewer, value in zip(reviewers[:2], ["safe", "injurious"], strict=True):
        lease = services.lease_next(queue=queue, reviewer=reviewer)
        services.label_submit(reviewer=reviewer, assignment_id=lease.pk, value=value, note=f"{reviewer.username} says")
    adjudication = ReviewQueue.objects.get(adjudicates=queue)
    body = login(reviewers[2]).get(reverse("review:label", args=[adjudication.pk])).content.decode()
    assert "First round" in body
    assert "rev0: safe" in body
    assert "rev1 says" in body


def test_reviewer_home_lists_their_queues_and_throughput(queue, reviewer, expert) -> None:
    lease = services.lease_next(queue=queue, reviewer=reviewer)
    services.label_submit(reviewer=reviewer, assignment_id=lease.pk, value="safe")
    body = login(reviewer).get(reverse("review:home")).content.decode()
    assert "Stories" in body
    assert "1 labels in the last hour" in body
    assert login(expert).get(reverse("review:home")).status_code == 403


def test_admin_creates_a_queue_from_the_page_and_bad_input_names_the_field(completions, admin_user, reviewer) -> None:
    completions(6, batch="nov")
    client = login(admin_user)
    form = {
        "name": "Nov",
        "policy": "random",
        "batch": "nov",
        "overlap": 2,
        "lease_seconds": 120,
        "gold_rate": 0,
        "all_reviewers": "on",
    }
    response = client.post(reverse("review:queue-new"), form)
    queue = ReviewQueue.objects.get(name="Nov")
    assert response.status_code == 302
    assert queue.items.count() == 6
    assert queue.slots.count() == 12
    bad = client.post(reverse("review:queue-new"), {**form, "name": "Empty", "batch": "nope"})
    assert bad.status_code == 400
    assert "no completions match" in bad.content.decode()
    closed = client.post(reverse("review:queue-new"), {**form, "name": "Closed", "all_reviewers": ""})
    assert closed.status_code == 400
    assert "name at least one reviewer" in closed.content.decode()
    assert not ReviewQueue.objects.filter(name__in=["Empty", "Closed"]).exists()
    assert login(reviewer).get(reverse("review:queue-new")).status_code == 403


def test_queue_page_shows_agreement_and_exports_jsonl(completions, make_queue, reviewers, admin_user) -> None:
    completions(2)
    queue = make_queue(overlap=2)
    for reviewer in reviewers[:2]:
        while (lease := services.lease_next(queue=queue, reviewer=reviewer)) is not None:
            services.label_submit(reviewer=reviewer, assignment_id=lease.pk, value="safe")
    client = login(admin_user)
    body = client.get(reverse("review:queue", args=[queue.pk])).content.decode()
    assert "Fleiss" in body
    assert "Krippendorff" in body
    assert "rev0 · rev1" in body
    export = client.get(reverse("review:queue-export", args=[queue.pk]))
    assert isinstance(export, StreamingHttpResponse)
    lines = b"".join(export.streaming_content).decode().splitlines()
    assert len(lines) == 4
    assert json.loads(lines[0])["label"] == "safe"
    assert login(reviewers[0]).get(reverse("review:queue-export", args=[queue.pk])).status_code == 403


def test_closing_a_queue_stops_new_leases(queue, admin_user, reviewer) -> None:
    login(admin_user).post(reverse("review:queue-close", args=[queue.pk]))
    queue.refresh_from_db()
    assert not queue.is_open
    body = login(reviewer).get(reverse("review:label", args=[queue.pk])).content.decode()
    assert "Nothing left for you" in body
    assert not Assignment.objects.exists()


def test_import_page_queues_a_job_and_refuses_a_bad_upload(
    db, admin_user, settings, tmp_path, django_capture_on_commit_callbacks
) -> None:
    settings.MEDIA_ROOT = tmp_path
    client = login(admin_user)
    upload = SimpleUploadedFile("c.jsonl", b'{"prompt": "p", "text": "t"}\n')
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("review:import"), {"file": upload, "batch": "web"})
    assert response.status_code == 302
    assert len(callbacks) == 1  # the Celery job is sent after commit
    job = ImportJob.objects.get()
    assert job.status == "pending"
    progress = client.get(reverse("review:import-job", args=[job.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in progress
    services.import_job_run(job_id=job.pk)
    assert "1 completions imported" in client.get(reverse("review:import-job", args=[job.pk])).content.decode()
    empty = client.post(reverse("review:import"), {"file": SimpleUploadedFile("e.jsonl", b"")})
    assert empty.status_code == 400
    assert ImportJob.objects.count() == 1


def test_admin_list_pages_use_a_fixed_number_of_queries(
    completions, make_queue, reviewers, admin_user, django_assert_max_num_queries
) -> None:
    completions(6)
    for n in range(4):
        queue = make_queue(name=f"Q{n}", overlap=2)
        for reviewer in reviewers[:2]:
            lease = services.lease_next(queue=queue, reviewer=reviewer)
            services.label_submit(reviewer=reviewer, assignment_id=lease.pk, value="safe")
    client = login(admin_user)
    with django_assert_max_num_queries(8):
        assert client.get(reverse("review:queues")).status_code == 200
    with django_assert_max_num_queries(8):
        assert client.get(reverse("review:reviewers")).status_code == 200
    with django_assert_max_num_queries(8):
        assert client.get(reverse("review:import")).status_code == 200
    reviewer_client = login(reviewers[0])
    with django_assert_max_num_queries(8):
        assert reviewer_client.get(reverse("review:home")).status_code == 200
