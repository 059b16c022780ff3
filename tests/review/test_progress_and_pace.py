"""Progress per queue ("x of N"), skip feedback, and labels flagged as too fast, with the rates checked by hand."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from rebench_site.errors import ServiceError
from review import selectors, services
from review.models import Assignment, ReviewQueue

JSON: dict[str, Any] = {"HTTP_ACCEPT": "application/json"}


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def label_one(queue: ReviewQueue, reviewer, value: str = "safe", *, seconds: float | None = None, at=None):
    at = at or timezone.now()
    lease = services.lease_next(queue=queue, reviewer=reviewer, now=at)
    assert lease is not None
    # The label comes a minute after the lease, so the time on screen sent is never cut to the lease.
    return services.label_submit(
        reviewer=reviewer, assignment_id=lease.pk, value=value, seconds_spent=seconds, now=at + timedelta(minutes=1)
    ).label


# --- progress -----------------------------------------------------------------------------------


def test_progress_counts_my_labels_of_the_items_still_open_to_me_and_the_queues_labels(
    completions, make_queue, reviewers
) -> None:
    completions(4)
    queue = make_queue(overlap=2)
    me, other, third = reviewers[:3]
    label_one(queue, me)
    skipped = services.lease_next(queue=queue, reviewer=me)
    services.lease_skip(reviewer=me, assignment_id=skipped.pk)
    progress = selectors.queue_progress(queue=queue, reviewer=me)
    # 1 labelled; of the other 3 items the skipped one is no longer mine to label.
    assert (progress.mine, progress.mine_possible, progress.filled, progress.wanted) == (1, 3, 1, 8)
    assert (progress.mine_percent, progress.queue_percent) == (33, 12)

    # Two others fill both slots of an item I never had: it drops out of what I may label.
    for reviewer in (other, third):
        while True:
            lease = services.lease_next(queue=queue, reviewer=reviewer)
            if not Assignment.objects.filter(item_id=lease.item_id, reviewer=me).exists():
                break
            services.lease_skip(reviewer=reviewer, assignment_id=lease.pk)
        services.label_submit(reviewer=reviewer, assignment_id=lease.pk, value="safe")
    progress = selectors.queue_progress(queue=queue, reviewer=me)
    assert (progress.mine, progress.mine_possible, progress.filled) == (1, 2, 3)


def test_a_lease_i_hold_counts_as_open_to_me_and_one_that_expired_does_not(completions, make_queue, reviewers) -> None:
    completions(2)
    queue = make_queue()
    start = timezone.now()
    services.lease_next(queue=queue, reviewer=reviewers[0], now=start)
    assert selectors.queue_progress(queue=queue, reviewer=reviewers[0], now=start).mine_possible == 2
    later = start + timedelta(seconds=queue.lease_seconds + 1)
    # The expired item went back to others; this reviewer is never offered it again.
    assert selectors.queue_progress(queue=queue, reviewer=reviewers[0], now=later).mine_possible == 1


def test_a_closed_queue_leaves_nothing_open_to_me(completions, make_queue, reviewers) -> None:
    completions(3)
    queue = make_queue()
    label_one(queue, reviewers[0])
    services.queue_close(queue=queue)
    progress = selectors.queue_progress(queue=queue, reviewer=reviewers[0])
    assert (progress.mine, progress.mine_possible) == (1, 1)


def test_the_labeling_page_and_each_label_answer_show_progress(completions, make_queue, reviewer) -> None:
    completions(3)
    queue = make_queue(overlap=2)
    client = login(reviewer)
    body = client.get(reverse("review:label", args=[queue.pk])).content.decode()
    assert '<span data-p="mine">0</span> of <span data-p="mine_possible">3</span> labelled by you' in body
    assert '<span data-p="filled">0</span> of <span data-p="wanted">6</span> labels in' in body
    lease = Assignment.objects.get(reviewer=reviewer)
    answer = client.post(
        reverse("review:label-submit", args=[queue.pk]), {"assignment": lease.pk, "value": "safe"}, **JSON
    ).json()
    assert answer["progress"] == {"mine": 1, "mine_possible": 3, "filled": 1, "wanted": 6}


def test_the_reviewer_home_shows_x_of_n_for_me_and_for_the_queue(completions, make_queue, reviewers) -> None:
    completions(3)
    queue = make_queue(name="Stories", overlap=2)
    label_one(queue, reviewers[0])
    label_one(queue, reviewers[1])
    body = login(reviewers[0]).get(reverse("review:home")).content.decode()
    assert "1 of 3 labelled by you" in body
    assert "2 of 6 labels in" in body
    assert f'href="/review/labels/?queue={queue.pk}"' in body


# --- skip -------------------------------------------------------------------------------------------


def test_skip_says_where_the_item_went_and_the_page_keeps_going(completions, make_queue, reviewer) -> None:
    completions(3)
    queue = make_queue()
    client = login(reviewer)
    lease = services.lease_next(queue=queue, reviewer=reviewer)
    answer = client.post(reverse("review:label-skip", args=[queue.pk]), {"assignment": lease.pk}, **JSON)
    assert answer.status_code == 200
    assert answer.json()["message"] == (
        "Skipped: the item went back to the queue for other reviewers; you won't be shown it again."
    )
    assert answer.json()["progress"]["mine_possible"] == 2
    # Without scripts the same words come back as a message on the labeling page, with the next item.
    second = services.lease_next(queue=queue, reviewer=reviewer, exclude=[lease.pk])
    page = client.post(reverse("review:label-skip", args=[queue.pk]), {"assignment": second.pk}, follow=True)
    body = page.content.decode()
    assert "Skipped: the item went back to the queue for other reviewers" in body
    assert "data-assignment=" in body
    refused = client.post(reverse("review:label-skip", args=[queue.pk]), {"assignment": "x"}, **JSON)
    assert refused.status_code == 400
    assert refused.json()["field"] == "assignment"


# --- too fast --------------------------------------------------------------------------------------


def test_queue_minimum_time_is_set_on_creation_and_bad_values_name_the_field(
    completions, make_queue, admin_user
) -> None:
    completions(2)
    assert make_queue().min_seconds_per_item == 3.0
    assert make_queue(name="slow", min_seconds_per_item=10).min_seconds_per_item == 10.0
    for bad in (-1, 4000, "soon", float("nan")):
        with pytest.raises(ServiceError) as info:
            make_queue(name="bad", min_seconds_per_item=bad)
        assert info.value.field == "min_seconds_per_item"
    form = {"name": "F", "policy": "random", "overlap": 1, "lease_seconds": 120, "gold_rate": 0, "all_reviewers": "on"}
    client = login(admin_user)
    refused = client.post(reverse("review:queue-new"), {**form, "min_seconds_per_item": "-2"})
    assert refused.status_code == 400
    assert "min_seconds_per_item" in refused.context["form"].errors
    assert client.post(reverse("review:queue-new"), {**form, "min_seconds_per_item": "7.5"}).status_code == 302
    assert ReviewQueue.objects.get(name="F").min_seconds_per_item == 7.5


def test_rates_and_flags_by_hand(completions, make_queue, reviewers) -> None:
    """rev0: 2 s, 4 s and 6 s on a 3-s queue → 3 labels in 12 s = 900 an hour, 4.0 s each, 1 too fast.
    rev1: the issue's 24 labels in 5.5 s → 3600 × 24 / 5.5 = 15,709 an hour, every one too fast."""
    completions(30)
    queue = make_queue(min_seconds_per_item=3)
    for seconds in (2, 4, 6):
        label_one(queue, reviewers[0], seconds=seconds)
    for _ in range(24):
        label_one(queue, reviewers[1], seconds=5.5 / 24)
    by_name = {s.username: s for s in selectors.reviewer_stats()}
    rev0, rev1 = by_name["rev0"], by_name["rev1"]
    assert (rev0.labels, rev0.seconds, rev0.too_fast) == (3, 12.0, 1)
    assert rev0.labels_per_hour == pytest.approx(900.0)
    assert rev0.seconds_per_label == pytest.approx(4.0)
    assert rev0.too_fast_share == pytest.approx(1 / 3)
    assert (rev1.labels, rev1.too_fast) == (24, 24)
    assert rev1.seconds == pytest.approx(5.5)
    assert rev1.labels_per_hour == pytest.approx(15709.09, abs=0.01)


def test_a_label_at_exactly_the_minimum_is_not_flagged_and_each_queue_uses_its_own(
    completions, make_queue, reviewers
) -> None:
    completions(2, batch="a")
    completions(1, batch="b")
    strict = make_queue(name="strict", batch="a", min_seconds_per_item=3)
    lax = make_queue(name="lax", batch="b", min_seconds_per_item=0)
    label_one(strict, reviewers[0], seconds=3.0)
    label_one(strict, reviewers[0], seconds=2.9)
    label_one(lax, reviewers[0], seconds=0.1)
    (stats,) = selectors.reviewer_stats()
    assert stats.too_fast == 1


def test_a_fast_label_is_accepted_with_a_flag_the_reviewer_sees(completions, make_queue, reviewer) -> None:
    completions(2)
    queue = make_queue(min_seconds_per_item=3)
    client = login(reviewer)
    lease = services.lease_next(queue=queue, reviewer=reviewer, now=timezone.now() - timedelta(seconds=30))
    answer = client.post(
        reverse("review:label-submit", args=[queue.pk]),
        {"assignment": lease.pk, "value": "safe", "seconds": "0.4"},
        **JSON,
    ).json()
    assert answer["ok"] is True
    assert answer["too_fast"] is True
    assert answer["message"] == (
        "Labelled safe. That took 0.4 s, under this queue's 3 s per item: it is flagged as too fast."
    )
    assert answer["throughput"]["too_fast"] == 1
    slow = services.lease_next(queue=queue, reviewer=reviewer, now=timezone.now() - timedelta(seconds=30))
    calm = client.post(
        reverse("review:label-submit", args=[queue.pk]),
        {"assignment": slow.pk, "value": "safe", "seconds": "8"},
        **JSON,
    ).json()
    assert (calm["too_fast"], calm["message"]) == (False, "Labelled safe.")
    home = client.get(reverse("review:home")).content.decode()
    assert "1 of them too fast for their queue's minimum time per item." in home
    mine = client.get(reverse("review:my-labels")).content.decode()
    assert mine.count('class="review-warn too-fast"') == 1


def test_flags_show_on_the_admins_reviewers_table_and_dashboard_and_not_to_reviewers(
    completions, make_queue, reviewers, admin_user
) -> None:
    completions(3)
    queue = make_queue(min_seconds_per_item=3)
    label_one(queue, reviewers[0], seconds=0.5)
    label_one(queue, reviewers[0], seconds=0.5)
    label_one(queue, reviewers[1], seconds=5)
    client = login(admin_user)
    for url in (reverse("review:reviewers"), reverse("review:queue", args=[queue.pk]), reverse("classifier:dashboard")):
        body = client.get(url).content.decode()
        assert '<span class="badge paused" title="100 % of their labels">2 flagged</span>' in body, url
        assert '<tr data-reviewer="rev1">' in body
    assert login(reviewers[0]).get(reverse("review:reviewers")).status_code == 403
    assert login(reviewers[0]).get(reverse("classifier:dashboard")).status_code == 403
