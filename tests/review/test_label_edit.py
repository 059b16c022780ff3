"""A reviewer's history: their labels newest first, paged, and edits within the queue's rules, each one kept."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from rebench_site.errors import ServiceError
from review import selectors, services
from review.models import Label, LabelRevision, QueueItem, ReviewQueue
from review.services import labels as label_services
from tests import factories
from tests.review.conftest import make_completions

JSON: dict[str, Any] = {"HTTP_ACCEPT": "application/json"}


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def label_all(queue: ReviewQueue, reviewer, values: list[str]) -> list[Label]:
    labels = []
    for value in values:
        lease = services.lease_next(queue=queue, reviewer=reviewer)
        assert lease is not None
        labels.append(services.label_submit(reviewer=reviewer, assignment_id=lease.pk, value=value).label)
    return labels


def adjudication_completions(queue: ReviewQueue) -> set[int]:
    return set(QueueItem.objects.filter(queue__adjudicates=queue).values_list("completion_id", flat=True))


# --- the service ------------------------------------------------------------------------------


def test_an_edit_changes_the_label_and_keeps_who_changed_what_and_when(completions, make_queue, reviewers) -> None:
    completions(1)
    queue = make_queue()
    (label,) = label_all(queue, reviewers[0], ["safe"])
    when = timezone.now() + timedelta(hours=3)  # long after the one-minute undo
    edited = services.label_edit(
        reviewer=reviewers[0], label_id=label.pk, value="injurious", note="missed the fall", now=when
    )
    assert (edited.value, edited.note, edited.edited_at) == ("injurious", "missed the fall", when)
    (revision,) = LabelRevision.objects.all()
    assert (revision.changed_by, revision.changed_at) == (reviewers[0], when)
    assert (revision.value_before, revision.value_after) == ("safe", "injurious")
    assert (revision.note_before, revision.note_after) == ("", "missed the fall")
    # Counts are untouched: an edit is not a second label.
    assert Label.objects.count() == 1
    assert QueueItem.objects.get().label_count == 1


def test_the_same_value_and_note_again_changes_nothing_and_what_is_not_sent_stays(
    completions, make_queue, reviewers
) -> None:
    completions(1)
    queue = make_queue()
    (label,) = label_all(queue, reviewers[0], ["safe"])
    services.label_edit(reviewer=reviewers[0], label_id=label.pk, value="safe")
    services.label_edit(reviewer=reviewers[0], label_id=label.pk, value="safe", note="")
    services.label_edit(reviewer=reviewers[0], label_id=label.pk)
    assert not LabelRevision.objects.exists()
    assert Label.objects.get().edited_at is None
    services.label_edit(reviewer=reviewers[0], label_id=label.pk, note="on second thought")
    assert (Label.objects.get().value, Label.objects.get().note) == ("safe", "on second thought")
    assert LabelRevision.objects.get().value_after == "safe"


def test_labels_of_a_closed_queue_are_final(completions, make_queue, reviewers) -> None:
    completions(1)
    queue = make_queue()
    (label,) = label_all(queue, reviewers[0], ["safe"])
    services.queue_close(queue=queue)
    with pytest.raises(ServiceError, match="queue is closed") as info:
        services.label_edit(reviewer=reviewers[0], label_id=label.pk, value="injurious")
    assert info.value.field == "label"
    assert Label.objects.get().value == "safe"
    assert not LabelRevision.objects.exists()


def test_bad_input_names_the_field_and_someone_elses_label_is_not_found(completions, make_queue, reviewers) -> None:
    completions(1)
    queue = make_queue()
    (label,) = label_all(queue, reviewers[0], ["safe"])
    cases = [
        ({"reviewer": reviewers[1], "label_id": label.pk, "value": "injurious"}, "label", "no such label"),
        ({"reviewer": reviewers[0], "label_id": "x", "value": "injurious"}, "label", "label number"),
        ({"reviewer": reviewers[0], "label_id": label.pk, "value": "maybe"}, "value", "must be one of"),
        ({"reviewer": reviewers[0], "label_id": label.pk, "value": "safe", "note": "n" * 5001}, "note", "5,000"),
    ]
    for kwargs, field, message in cases:
        with pytest.raises(ServiceError, match=message) as info:
            services.label_edit(**kwargs)
        assert info.value.field == field
    assert Label.objects.get().value == "safe"


def test_an_edit_that_makes_labels_differ_sends_the_item_to_adjudication_and_one_that_makes_them_agree_takes_it_back(
    completions, make_queue, reviewers
) -> None:
    (completion,) = completions(1)
    queue = make_queue(overlap=2)
    (mine,) = label_all(queue, reviewers[0], ["safe"])
    label_all(queue, reviewers[1], ["safe"])
    assert adjudication_completions(queue) == set()
    services.label_edit(reviewer=reviewers[0], label_id=mine.pk, value="injurious")
    assert adjudication_completions(queue) == {completion.pk}
    assert selectors.completion_consensus(completion=completion) is None
    services.label_edit(reviewer=reviewers[0], label_id=mine.pk, value="safe")
    assert adjudication_completions(queue) == set()
    assert selectors.completion_consensus(completion=completion) == "safe"


def test_once_an_adjudicator_takes_the_item_the_first_round_can_no_longer_be_edited(
    completions, make_queue, reviewers
) -> None:
    completions(1)
    queue = make_queue(overlap=2)
    (mine,) = label_all(queue, reviewers[0], ["safe"])
    label_all(queue, reviewers[1], ["injurious"])
    adjudication = ReviewQueue.objects.get(adjudicates=queue)
    # Leased, not yet labelled: the adjudicator is looking at it.
    services.lease_next(queue=adjudication, reviewer=reviewers[2])
    with pytest.raises(ServiceError, match="adjudicator has taken this item") as info:
        services.label_edit(reviewer=reviewers[0], label_id=mine.pk, value="injurious")
    assert info.value.code == "final"
    assert Label.objects.get(pk=mine.pk).value == "safe"
    (row,) = selectors.label_rows(list(selectors.labels_of_reviewer(reviewer=reviewers[0])))
    assert row.refusal == "an adjudicator has taken this item: their label settles it"


def test_an_adjudicator_may_correct_their_own_label_while_the_adjudication_queue_is_open(
    completions, make_queue, reviewers
) -> None:
    (completion,) = completions(1)
    queue = make_queue(overlap=2)
    label_all(queue, reviewers[0], ["safe"])
    label_all(queue, reviewers[1], ["injurious"])
    adjudication = ReviewQueue.objects.get(adjudicates=queue)
    (verdict,) = label_all(adjudication, reviewers[2], ["safe"])
    services.label_edit(reviewer=reviewers[2], label_id=verdict.pk, value="injurious")
    assert selectors.completion_consensus(completion=completion) == "injurious"


@pytest.mark.django_db(transaction=True)
def test_an_edit_racing_the_last_label_of_the_same_item_leaves_adjudication_right(admin_user, monkeypatch) -> None:
    """Each round: A's safe label is in, B holds the other slot; A edits to injurious while B labels safe.

    Whatever the order, the labels end up differing, so the item must be in adjudication: the
    edit and the label lock the item's row, so neither decides on the other's uncommitted value.
    Both adjudication checks are slowed down (the edit's longer), so both transactions are open
    when each decides: without the lock the edit would count one label and the label would read
    the old "safe", both would conclude "they agree", and the item would be missed every round.
    """
    real_sync = label_services._adjudication_sync
    delay = {"label": 0.2, "edit": 0.4}

    def slow_sync(*args, **kwargs) -> None:
        time.sleep(delay.get(threading.current_thread().name, 0))
        real_sync(*args, **kwargs)

    # label_submit and label_edit look it up in their own module.
    monkeypatch.setattr(label_services, "_adjudication_sync", slow_sync)
    rounds = 6
    make_completions(rounds)
    queue = services.queue_create(created_by=admin_user, name="race", policy="random", overlap=2, seed=5)
    a, b = factories.reviewer(username="ann"), factories.reviewer(username="bob")
    errors: list[BaseException] = []
    for _ in range(rounds):
        (mine,) = label_all(queue, a, ["safe"])
        lease = services.lease_next(queue=queue, reviewer=b)
        assert lease is not None
        assert lease.item_id == mine.item_id
        start = threading.Barrier(2)

        def run(action, start: threading.Barrier = start) -> None:
            try:
                start.wait()
                action()
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                connections.close_all()

        edit = threading.Thread(
            name="edit",
            target=run,
            args=(lambda m=mine: services.label_edit(reviewer=a, label_id=m.pk, value="injurious"),),
        )
        label = threading.Thread(
            name="label",
            target=run,
            args=(lambda x=lease: services.label_submit(reviewer=b, assignment_id=x.pk, value="safe"),),
        )
        threads = [edit, label]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert adjudication_completions(queue) == set(
        QueueItem.objects.filter(queue=queue).values_list("completion_id", flat=True)
    )


# --- the pages --------------------------------------------------------------------------------


def test_my_labels_lists_only_my_labels_newest_first_with_the_excerpt_and_the_flag(
    completions, make_queue, reviewers, django_assert_max_num_queries
) -> None:
    completions(3)
    queue = make_queue(name="Stories", min_seconds_per_item=5)
    mine = label_all(queue, reviewers[0], ["safe", "injurious"])
    Label.objects.filter(pk=mine[1].pk).update(seconds_spent=1.5)
    Label.objects.filter(pk=mine[0].pk).update(seconds_spent=9.0)
    label_all(queue, reviewers[1], ["unsure"])
    client = login(reviewers[0])
    with django_assert_max_num_queries(12):
        response = client.get(reverse("review:my-labels"))
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [r.label.pk for r in rows] == [mine[1].pk, mine[0].pk]
    assert [r.too_fast for r in rows] == [True, False]
    body = response.content.decode()
    assert mine[1].completion.text in body
    assert body.count('class="review-warn too-fast"') == 1
    assert body.count('class="inline label-edit"') == 2


def test_my_labels_pages_by_fifty_and_filters_by_queue(completions, make_queue, reviewers) -> None:
    completions(55, batch="many")
    completions(1, batch="other")
    many = make_queue(name="Many", batch="many")
    other = make_queue(name="Other", batch="other")
    label_all(many, reviewers[0], ["safe"] * 55)
    label_all(other, reviewers[0], ["injurious"])
    client = login(reviewers[0])
    first = client.get(reverse("review:my-labels"))
    assert len(first.context["rows"]) == 50
    assert "page 1 of 2" in first.content.decode()
    second = client.get(reverse("review:my-labels"), {"page": 2})
    assert len(second.context["rows"]) == 6
    only = client.get(reverse("review:my-labels"), {"queue": other.pk})
    assert [r.label.queue_id for r in only.context["rows"]] == [other.pk]
    assert only.context["progress"].mine == 1
    # A queue they have no labels in (or no number) is named and ignored, not a 500.
    stray = client.get(reverse("review:my-labels"), {"queue": "12x"}, follow=True)
    assert stray.status_code == 200
    assert "you have no labels in a queue “12x”" in stray.content.decode()


def test_my_labels_refuses_admins_and_experts(db, admin_user, expert) -> None:
    assert login(admin_user).get(reverse("review:my-labels")).status_code == 403
    assert login(expert).get(reverse("review:my-labels")).status_code == 403
    assert Client().get(reverse("review:my-labels")).status_code == 302


def test_editing_from_the_page_saves_and_goes_back_to_the_same_list(completions, make_queue, reviewers) -> None:
    completions(1)
    queue = make_queue()
    (label,) = label_all(queue, reviewers[0], ["safe"])
    back = reverse("review:my-labels") + f"?queue={queue.pk}"
    response = login(reviewers[0]).post(
        reverse("review:label-edit", args=[label.pk]), {"value": "unsure", "note": "hard to tell", "next": back}
    )
    assert response.status_code == 302
    assert response["Location"] == back
    label.refresh_from_db()
    assert (label.value, label.note) == ("unsure", "hard to tell")
    page = login(reviewers[0]).get(back).content.decode()
    assert "safe → unsure" in page


def test_editing_someone_elses_label_is_a_404_and_a_refused_edit_is_a_400_naming_the_field(
    completions, make_queue, reviewers, admin_user
) -> None:
    completions(1)
    queue = make_queue()
    (label,) = label_all(queue, reviewers[0], ["safe"])
    url = reverse("review:label-edit", args=[label.pk])
    assert login(reviewers[1]).post(url, {"value": "injurious"}).status_code == 404
    assert login(admin_user).post(url, {"value": "injurious"}).status_code == 403
    client = login(reviewers[0])
    # A post without fields changes nothing and goes back to the list.
    empty = client.post(url)
    assert empty.status_code == 302
    assert not LabelRevision.objects.exists()
    bad = client.post(url, {"value": "maybe"}, **JSON)
    assert bad.status_code == 400
    assert bad.json()["field"] == "value"
    services.queue_close(queue=queue)
    closed = client.post(url, {"value": "injurious"})
    assert closed.status_code == 400
    assert "label: the queue is closed: its labels are final" in closed.content.decode()
    offsite = client.post(url, {"value": "safe", "note": "x", "next": "https://elsewhere.example/"})
    assert offsite.status_code == 400  # still closed: refused, and no redirect anywhere
    assert Label.objects.get().value == "safe"
    assert not LabelRevision.objects.exists()


def test_a_successful_edit_never_redirects_off_the_site(completions, make_queue, reviewers) -> None:
    completions(1)
    queue = make_queue()
    (label,) = label_all(queue, reviewers[0], ["safe"])
    response = login(reviewers[0]).post(
        reverse("review:label-edit", args=[label.pk]), {"value": "injurious", "next": "https://elsewhere.example/"}
    )
    assert response["Location"] == reverse("review:my-labels")


def test_a_closed_queues_labels_say_why_they_cant_be_changed(completions, make_queue, reviewers) -> None:
    completions(1)
    queue = make_queue()
    label_all(queue, reviewers[0], ["safe"])
    services.queue_close(queue=queue)
    body = login(reviewers[0]).get(reverse("review:my-labels")).content.decode()
    assert "Can't change: the queue is closed: its labels are final." in body
    assert 'class="inline label-edit"' not in body
