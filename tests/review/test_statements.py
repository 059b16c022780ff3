"""What `next` and `label` cost the database over the API: two statements each on PostgreSQL, pinned.

Counted in transactional tests, as they run in production (a label's two statements between BEGIN
and COMMIT, a next's pick a transaction of its own); the token's user and roles come from the cache
after the first request.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from review.models import Label, QueueItem, ReviewQueue, Slot
from tests.hostile.test_cached_api_tokens import forget_cached_tokens

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def token_cache(settings):
    settings.API_TOKEN_CACHE_SECONDS = 60
    yield
    forget_cached_tokens()


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def statements(ctx: CaptureQueriesContext) -> list[str]:
    """The statements run, without the transaction's BEGIN and COMMIT that Django logs as well."""
    return [q["sql"] for q in ctx.captured_queries if q["sql"] not in {"BEGIN", "COMMIT"}]


def test_next_is_the_queue_row_and_one_statement_that_picks_and_leases(completions, make_queue, reviewer) -> None:
    completions(5)
    queue = make_queue()
    client = api(reviewer)
    first = client.post(f"/api/review/queues/{queue.pk}/next/").json()  # fills the token cache
    client.post(f"/api/review/leases/{first['assignment']}/label/", {"value": "safe"}, format="json")
    with CaptureQueriesContext(connection) as ctx:
        lease = client.post(f"/api/review/queues/{queue.pk}/next/")
    assert lease.status_code == 200
    queue_row, pick = statements(ctx)
    assert queue_row.startswith('SELECT "review_reviewqueue"')
    assert "FOR UPDATE OF s SKIP LOCKED" in pick
    assert "INSERT INTO review_assignment" in pick
    # The lease already held comes back from the same one statement, nothing written.
    with CaptureQueriesContext(connection) as ctx:
        again = client.post(f"/api/review/queues/{queue.pk}/next/")
    assert again.json() == lease.json()
    assert len(statements(ctx)) == 2


def test_label_is_the_lock_and_one_statement_that_writes_label_slot_assignment_and_item(
    completions, make_queue, reviewer
) -> None:
    completions(2)
    queue = make_queue()
    client = api(reviewer)
    lease = client.post(f"/api/review/queues/{queue.pk}/next/").json()
    with CaptureQueriesContext(connection) as ctx:
        answer = client.post(f"/api/review/leases/{lease['assignment']}/label/", {"value": "safe"}, format="json")
    assert answer.status_code == 201
    lock, write = statements(ctx)
    # Slot, assignment, item: the lock order every writer of a lease keeps.
    assert 'FOR UPDATE OF "review_slot", "review_assignment", "review_queueitem"' in lock
    assert "INSERT INTO review_label" in write
    assert all(f"UPDATE {table}" in write for table in ("review_assignment", "review_slot", "review_queueitem"))
    label = Label.objects.get(pk=answer.json()["label"])
    assert (label.value, label.assignment.state) == ("safe", "labeled")
    assert Slot.objects.get(pk=label.assignment.slot_id).filled
    assert QueueItem.objects.get(pk=label.item_id).label_count == 1


def test_a_label_that_completes_a_disputed_item_adds_only_the_adjudication_steps(
    completions, make_queue, reviewers
) -> None:
    completions(1)
    queue = make_queue(overlap=2)
    for reviewer, value in zip(reviewers[:2], ["safe", "injurious"], strict=True):
        client = api(reviewer)
        lease = client.post(f"/api/review/queues/{queue.pk}/next/").json()
        with CaptureQueriesContext(connection) as ctx:
            client.post(f"/api/review/leases/{lease['assignment']}/label/", {"value": value}, format="json")
    # The lock, the write (which read the other label), then the adjudication queue made and filled.
    assert len(statements(ctx)) > 2
    adjudication = ReviewQueue.objects.get(adjudicates=queue)
    assert adjudication.items.count() == 1
