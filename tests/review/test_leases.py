"""Leases: the pick order, expiry without a sweeper, never the same item twice, skip, renew."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from rebench_site.errors import ServiceError
from review import services
from review.models import Assignment, Slot


def test_reviewer_never_sees_an_item_twice(completions, make_queue, reviewers) -> None:
    completions(3)
    queue = make_queue(overlap=2)
    rita = reviewers[0]
    seen = []
    while (lease := services.lease_next(queue=queue, reviewer=rita)) is not None:
        seen.append(lease.item_id)
        services.label_submit(reviewer=rita, assignment_id=lease.pk, value="safe")
    assert sorted(seen) == sorted(set(seen))
    assert len(seen) == 3


def test_an_item_gets_overlap_labels_from_different_reviewers(completions, make_queue, reviewers) -> None:
    completions(2)
    queue = make_queue(overlap=2)
    for reviewer in reviewers[:3]:
        while (lease := services.lease_next(queue=queue, reviewer=reviewer)) is not None:
            services.label_submit(reviewer=reviewer, assignment_id=lease.pk, value="safe")
    for item in queue.items.all():
        assert item.label_count == 2
        assert item.labels.values("reviewer").distinct().count() == 2
    assert services.lease_next(queue=queue, reviewer=reviewers[3]) is None


def test_expired_lease_returns_the_slot_without_a_sweeper(completions, make_queue, reviewers) -> None:
    completions(1)
    queue = make_queue(overlap=1, lease_seconds=60)
    first = services.lease_next(queue=queue, reviewer=reviewers[0])
    assert first is not None
    assert services.lease_next(queue=queue, reviewer=reviewers[1]) is None
    later = timezone.now() + timedelta(seconds=61)
    second = services.lease_next(queue=queue, reviewer=reviewers[1], now=later)
    assert second is not None
    assert second.slot_id == first.slot_id
    with pytest.raises(ServiceError, match="expired"):
        services.label_submit(reviewer=reviewers[0], assignment_id=first.pk, value="safe", now=later)
    services.label_submit(reviewer=reviewers[1], assignment_id=second.pk, value="safe", now=later)
    assert Slot.objects.get(pk=first.slot_id).filled


def test_label_after_expiry_is_refused_even_when_no_one_took_the_slot(completions, make_queue, reviewers) -> None:
    completions(1)
    queue = make_queue(lease_seconds=60)
    lease = services.lease_next(queue=queue, reviewer=reviewers[0])
    with pytest.raises(ServiceError, match="expired") as info:
        services.label_submit(
            reviewer=reviewers[0], assignment_id=lease.pk, value="safe", now=timezone.now() + timedelta(seconds=61)
        )
    assert info.value.field == "assignment"
    assert not queue.labels.exists()


def test_skip_gives_the_item_to_others_but_not_back_to_the_skipper(completions, make_queue, reviewers) -> None:
    completions(1)
    queue = make_queue()
    lease = services.lease_next(queue=queue, reviewer=reviewers[0])
    services.lease_skip(reviewer=reviewers[0], assignment_id=lease.pk)
    assert services.lease_next(queue=queue, reviewer=reviewers[0]) is None
    other = services.lease_next(queue=queue, reviewer=reviewers[1])
    assert other is not None
    assert other.item_id == lease.item_id


def test_next_returns_the_lease_already_held_until_it_is_excluded(completions, make_queue, reviewers) -> None:
    completions(5)
    queue = make_queue()
    first = services.lease_next(queue=queue, reviewer=reviewers[0])
    assert services.lease_next(queue=queue, reviewer=reviewers[0]).pk == first.pk
    prefetched = services.lease_next(queue=queue, reviewer=reviewers[0], exclude=[first.pk])
    assert prefetched.pk != first.pk
    with pytest.raises(ServiceError, match="already hold 2"):
        services.lease_next(queue=queue, reviewer=reviewers[0], exclude=[first.pk, prefetched.pk])


def test_renewal_extends_a_live_lease_and_reports_a_lost_one(completions, make_queue, reviewers) -> None:
    completions(2)
    queue = make_queue(lease_seconds=60)
    lease = services.lease_next(queue=queue, reviewer=reviewers[0])
    in_50s = timezone.now() + timedelta(seconds=50)
    renewed = services.lease_renew(reviewer=reviewers[0], assignment_ids=[lease.pk], now=in_50s)
    assert renewed[lease.pk] == in_50s + timedelta(seconds=60)
    # Still held 100 s after the pick, thanks to the renewal.
    assert services.lease_next(queue=queue, reviewer=reviewers[1], now=in_50s + timedelta(seconds=50)).item_id != (
        lease.item_id
    )
    lost = services.lease_renew(reviewer=reviewers[0], assignment_ids=[lease.pk], now=in_50s + timedelta(seconds=61))
    assert lost[lease.pk] is None


def test_random_policy_order_is_a_precomputed_key_not_insertion_order(completions, make_queue, reviewers) -> None:
    made = completions(30)
    queue = make_queue(seed=7)
    keys = list(queue.items.order_by("sort_key").values_list("completion_id", flat=True))
    assert sorted(keys) == [c.pk for c in made]
    assert keys != [c.pk for c in made]
    lease = services.lease_next(queue=queue, reviewer=reviewers[0])
    assert lease.item.completion_id == keys[0]


def test_uncertain_policy_serves_scores_nearest_the_threshold_first(db, settings, make_queue, reviewers) -> None:
    from review.models import Completion

    settings.REVIEW_DEFAULT_THRESHOLD = 0.3
    for score in (0.9, 0.31, None, 0.05, 0.5):
        Completion.objects.create(prompt="p", text=f"t {score}", classifier_score=score)
    queue = make_queue(policy="uncertain")
    order = []
    while (lease := services.lease_next(queue=queue, reviewer=reviewers[0])) is not None:
        order.append(lease.item.completion.classifier_score)
        services.label_submit(reviewer=reviewers[0], assignment_id=lease.pk, value="safe")
    assert order == [0.31, 0.5, 0.05, 0.9, None]


def test_a_reviewer_outside_a_restricted_queue_gets_nothing(completions, make_queue, reviewers) -> None:
    completions(1)
    queue = make_queue(all_reviewers=False, reviewers=[reviewers[0]])
    assert services.lease_next(queue=queue, reviewer=reviewers[0]) is not None
    with pytest.raises(ServiceError, match="not a reviewer of this queue"):
        services.lease_next(queue=queue, reviewer=reviewers[1])


def test_release_hands_back_a_prefetched_item_as_if_never_leased(completions, make_queue, reviewers) -> None:
    completions(1)
    queue = make_queue()
    lease = services.lease_next(queue=queue, reviewer=reviewers[0])
    services.lease_release(reviewer=reviewers[0], assignment_id=lease.pk)
    assert not Assignment.objects.exists()
    again = services.lease_next(queue=queue, reviewer=reviewers[0])
    assert again.item_id == lease.item_id


@pytest.mark.postgres
def test_the_pick_is_one_skip_locked_statement_in_policy_order_never_order_by_random(
    completions, make_queue, reviewers
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    completions(3)
    queue = make_queue()
    with CaptureQueriesContext(connection) as ctx:
        lease = services.lease_next(queue=queue, reviewer=reviewers[0])
    # (The reviewer's roles are read first, once per request.)
    *_roles, pick = [q["sql"] for q in ctx.captured_queries]
    assert not any("review_" in sql for sql in _roles)
    assert "FOR UPDATE OF s SKIP LOCKED" in pick
    assert "ORDER BY s.sort_key, s.id" in pick
    assert "INSERT INTO review_assignment" in pick
    assert "UPDATE review_slot" in pick
    assert "RANDOM()" not in pick.upper()
    # What the pick wrote is what the tables hold.
    slot = Slot.objects.get(pk=lease.slot_id)
    assert (slot.lease_id, slot.lease_expires_at) == (lease.pk, lease.expires_at)
    assert Assignment.objects.get(pk=lease.pk).item_id == lease.item_id == slot.item_id
