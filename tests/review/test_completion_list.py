"""The admin's completion list: filtered by queue, label state and source, searched by text, 50 a page."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from review import services
from review.models import Completion

URL = reverse("review:completions")


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def shown(response) -> list[int]:
    return [c.pk for c, _counts in response.context["rows"]]


def label_item(queue, reviewer, completion: Completion, value: str) -> None:
    """Skip what comes up until the given completion does, then label it."""
    while True:
        lease = services.lease_next(queue=queue, reviewer=reviewer)
        assert lease is not None
        if lease.item.completion_id == completion.pk:
            services.label_submit(reviewer=reviewer, assignment_id=lease.pk, value=value)
            return
        services.lease_skip(reviewer=reviewer, assignment_id=lease.pk)


def test_the_list_filters_by_label_state_within_a_queue(completions, make_queue, reviewers, admin_user) -> None:
    a, b, c, d = completions(4)
    queue = make_queue(overlap=2)
    for reviewer, value in ((reviewers[0], "safe"), (reviewers[1], "injurious")):
        label_item(queue, reviewer, a, value)  # disputed
    label_item(queue, reviewers[2], b, "safe")
    label_item(queue, reviewers[3], c, "unsure")
    client = login(admin_user)
    expected = {
        "": [d.pk, c.pk, b.pk, a.pk],
        "unlabelled": [d.pk],
        "labelled": [c.pk, b.pk, a.pk],
        "safe": [b.pk, a.pk],
        "injurious": [a.pk],
        "unsure": [c.pk],
        "disputed": [a.pk],
    }
    for state, ids in expected.items():
        assert shown(client.get(URL, {"queue": queue.pk, "state": state})) == ids, state
    response = client.get(URL, {"queue": queue.pk, "state": "disputed"})
    assert response.context["rows"][0][1] == {"injurious": 1, "safe": 1, "unsure": 0}


def test_a_queue_filter_counts_that_queues_labels_only(completions, make_queue, reviewers, admin_user) -> None:
    (only,) = completions(1)
    first = make_queue(name="first")
    second = make_queue(name="second")
    label_item(first, reviewers[0], only, "safe")
    client = login(admin_user)
    assert shown(client.get(URL, {"queue": first.pk, "state": "labelled"})) == [only.pk]
    assert shown(client.get(URL, {"queue": second.pk, "state": "unlabelled"})) == [only.pk]
    assert shown(client.get(URL, {"state": "labelled"})) == [only.pk]


def test_source_and_text_search_and_fifty_a_page(completions, admin_user) -> None:
    completions(60, source="in_distribution", batch="bulk")
    red = Completion.objects.create(
        prompt="p", text="A rewrite about a ladder.", source="red_team", batch="rt", external_id="ext-9"
    )
    client = login(admin_user)
    assert shown(client.get(URL, {"source": "red_team"})) == [red.pk]
    assert shown(client.get(URL, {"q": "LADDER"})) == [red.pk]
    assert shown(client.get(URL, {"q": "ext-9"})) == [red.pk]
    assert len(shown(client.get(URL, {"q": "bulk"}))) == 50
    first = client.get(URL)
    assert len(shown(first)) == 50
    assert shown(first)[0] == red.pk
    assert "page 1 of 2" in first.content.decode()
    second = client.get(URL, {"page": "2", "source": "in_distribution"})
    assert len(shown(second)) == 10
    # The pager keeps the filters.
    assert 'href="?source=in_distribution&amp;page=1"' in second.content.decode()


def test_unknown_filter_values_are_named_and_ignored_not_a_500(completions, admin_user) -> None:
    completions(2)
    client = login(admin_user)
    for params, words in (
        ({"state": "done"}, "state: no state “done”"),
        ({"source": "moon"}, "source: no source “moon”"),
        ({"queue": "99999"}, "queue: no queue “99999”"),
        ({"queue": "x"}, "queue: no queue “x”"),
        ({"page": "-3"}, ""),
    ):
        response = client.get(URL, params)
        assert response.status_code == 200, params
        assert len(shown(response)) == 2
        assert words in response.content.decode()


def test_the_list_is_for_admins_only_and_takes_a_fixed_number_of_queries(
    completions, make_queue, reviewers, admin_user, reviewer, django_assert_max_num_queries
) -> None:
    completions(30)
    queue = make_queue(overlap=2)
    for r in reviewers[:2]:
        for _ in range(10):
            lease = services.lease_next(queue=queue, reviewer=r)
            services.label_submit(reviewer=r, assignment_id=lease.pk, value="safe")
    client = login(admin_user)
    with django_assert_max_num_queries(9):
        assert client.get(URL, {"queue": queue.pk}).status_code == 200
    assert login(reviewer).get(URL).status_code == 403
    assert Client().get(URL).status_code == 302
