"""A reviewer labels three items with the keyboard only, undoes one, and the labels land once each."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from review import services
from review.models import Completion, Label
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_reviewer_labels_three_items_with_the_keyboard_only(page_for) -> None:
    rita = factories.reviewer(username="rita")
    admin = factories.admin(username="root")
    for n in range(3):
        Completion.objects.create(prompt=f"Story {n}", text=f"Completion number {n}.")
    queue = services.queue_create(
        created_by=admin, name="Stories", policy="random", guideline="Injury to a person is injurious.", seed=2
    )

    # Load the URLconf (and the heavy imports behind it) here, not inside the browser's first 10 s request.
    reverse("review:home")
    page = page_for("rita", factories.PASSWORD)
    page.goto(f"/review/queues/{queue.pk}/label/")
    expect(page.locator("#review-current .review-item")).to_have_count(1)
    expect(page.locator(".review-guideline")).to_contain_text("Injury to a person")
    # The next item is leased and rendered ahead of time, out of sight.
    expect(page.locator("#review-prefetch .review-item")).to_have_count(1)

    shown = []
    for key in ["1", "2", "3"]:
        item = page.locator("#review-current .review-item")
        held = item.get_attribute("data-assignment")
        shown.append(page.locator("#review-current .review-text").inner_text())
        page.keyboard.press(key)
        # The prefetched item takes its place at once; the label is posted in the background.
        expect(page.locator(f"#review-current [data-assignment='{held}']")).to_have_count(0)
    expect(page.locator("#review-current .review-empty")).to_be_visible()
    expect(page.locator("#review-status")).to_contain_text("Labelled unsure")
    expect(page.locator("#review-throughput [data-k=today]")).to_have_text("3")
    assert len(set(shown)) == 3

    by_text = dict(Label.objects.filter(reviewer=rita).values_list("completion__text", "value"))
    assert by_text == {shown[0]: "injurious", shown[1]: "safe", shown[2]: "unsure"}

    # u brings the last item back; 2 relabels it; nothing is counted twice.
    page.keyboard.press("u")
    expect(page.locator("#review-current .review-text")).to_have_text(shown[2])
    page.keyboard.press("2")
    expect(page.locator("#review-status")).to_contain_text("Labelled safe")
    assert Label.objects.filter(reviewer=rita).count() == 3
    assert Label.objects.get(completion__text=shown[2]).value == "safe"
    assert sorted(queue.items.values_list("label_count", flat=True)) == [1, 1, 1]


def test_the_reviewers_history_edits_a_label_and_skip_says_where_the_item_went(page_for) -> None:
    rita = factories.reviewer(username="rita")
    admin = factories.admin(username="root")
    for n in range(4):
        Completion.objects.create(prompt=f"Story {n}", text=f"Completion number {n}.")
    queue = services.queue_create(created_by=admin, name="Stories", policy="random", seed=3)

    reverse("review:home")
    page = page_for("rita", factories.PASSWORD)
    page.goto(f"/review/queues/{queue.pk}/label/")
    expect(page.locator("#review-progress")).to_contain_text("0 of 4 labelled by you")
    first_text = page.locator("#review-current .review-text").inner_text()
    page.keyboard.press("2")
    expect(page.locator("#review-status")).to_contain_text("Labelled safe")
    page.keyboard.press("1")
    expect(page.locator("#review-status")).to_contain_text("Labelled injurious")
    expect(page.locator("#review-progress [data-p=mine]")).to_have_text("2")

    # Skip: the page says where the item went and shows the next one.
    skipped = page.locator("#review-current .review-item").get_attribute("data-assignment")
    page.keyboard.press("s")
    expect(page.locator("#review-status")).to_contain_text(
        "Skipped: the item went back to the queue for other reviewers; you won't be shown it again."
    )
    expect(page.locator(f"#review-current [data-assignment='{skipped}']")).to_have_count(0)
    expect(page.locator("#review-current .review-item[data-assignment]")).to_have_count(1)
    # The skipped item is no longer one this reviewer may label.
    expect(page.locator("#review-progress")).to_contain_text("2 of 3 labelled by you")

    # The history, long after the one-minute undo: the older label is changed from safe to injurious.
    page.get_by_role("link", name="your labels in this queue").first.click()
    page.wait_for_url(f"**/review/labels/?queue={queue.pk}")
    rows = page.locator("#my-labels tbody tr")
    expect(rows).to_have_count(2)
    older = rows.nth(1)
    expect(older.locator(".my-label-text")).to_have_text(first_text)
    label = Label.objects.get(reviewer=rita, completion__text=first_text)
    older.locator("select[name=value]").select_option("injurious")
    older.locator("input[name=note]").fill("missed the fall")
    older.get_by_role("button", name="Save").click()
    page.wait_for_url(f"**/review/labels/?queue={queue.pk}")
    expect(page.locator(".messages")).to_contain_text(f"Label {label.pk} is now injurious")
    edited = page.locator(f"#label-{label.pk}")
    expect(edited.locator(".revision")).to_contain_text("safe → injurious")
    expect(edited).to_contain_text("missed the fall")

    label.refresh_from_db()
    assert (label.value, label.note) == ("injurious", "missed the fall")
    assert label.revisions.get().value_before == "safe"
    assert Label.objects.filter(reviewer=rita).count() == 2
