"""Concurrent reviewers in real transactions (PostgreSQL and SQLite): no slot leased twice, N labels per item."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from django.db import connections

from review import services
from review.models import Assignment, Label, QueueItem, Slot
from tests import factories
from tests.review.conftest import make_completions

pytestmark = [pytest.mark.django_db(transaction=True)]


def race(admin_user, *, reviewer_count: int, item_count: int, overlap: int) -> None:
    """Reviewer threads pick, hold, label or skip until the queue is done; then check every invariant."""
    make_completions(item_count)
    queue = services.queue_create(created_by=admin_user, name="race", policy="random", overlap=overlap, seed=3)
    reviewers = [factories.reviewer(username=f"racer{i}") for i in range(reviewer_count)]
    holds: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(len(reviewers))

    def work(reviewer, seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait()
            while True:
                lease = services.lease_next(queue=queue, reviewer=reviewer)
                if lease is None:
                    # Slots leased by others right now may come back (a skip): wait for those,
                    # as a reviewer would, until every unfilled slot is on an item this one has had.
                    if (
                        not Slot.objects.filter(queue=queue, filled=False)
                        .exclude(item__assignments__reviewer=reviewer)
                        .exists()
                    ):
                        return
                    time.sleep(0.01)
                    continue
                # Measured inside the real hold (after the pick committed, before the release
                # starts), so two overlapping intervals here mean two real overlapping leases.
                got = time.monotonic()
                time.sleep(rng.random() * 0.002)
                released = time.monotonic()
                if rng.random() < 0.1:
                    services.lease_skip(reviewer=reviewer, assignment_id=lease.pk)
                else:
                    services.label_submit(
                        reviewer=reviewer, assignment_id=lease.pk, value=rng.choice(["safe", "injurious", "unsure"])
                    )
                with lock:
                    holds[lease.slot_id].append((got, released, reviewer.pk))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(r, n)) for n, r in enumerate(reviewers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)

    assert QueueItem.objects.filter(queue=queue).count() == item_count
    for item in QueueItem.objects.filter(queue=queue):
        labels = list(Label.objects.filter(item=item).values_list("reviewer_id", flat=True))
        assert len(labels) == overlap, item
        assert len(set(labels)) == overlap, item
        assert item.label_count == overlap
    assert Label.objects.filter(queue=queue).count() == item_count * overlap
    assert not Slot.objects.filter(queue=queue, filled=False).exists()
    for slot_id, intervals in holds.items():
        intervals.sort()
        for (_, end, _), (begin, _, _) in itertools.pairwise(intervals):
            assert end <= begin, f"slot {slot_id} leased twice at once"
    # Skipped items went to others and no reviewer had one item twice (the unique constraint held).
    assert Assignment.objects.filter(queue=queue, state="skipped").exists()


@pytest.mark.postgres
def test_twenty_reviewers_label_two_hundred_items_with_overlap_two_exactly(admin_user) -> None:
    race(admin_user, reviewer_count=20, item_count=200, overlap=2)


def test_twenty_reviewers_race_on_the_embedded_database_too(admin_user) -> None:
    # SQLite's transactions begin IMMEDIATE (one writer at a time): slower, and just as exact. The
    # writers queue at rebench_site.sqlite3's gate; in SQLite's sleeping busy handler, 20 of them
    # outwaited the 20 s busy timeout ("database is locked") on a loaded 2-core machine.
    race(admin_user, reviewer_count=20, item_count=200, overlap=2)


@pytest.mark.postgres
def test_the_race_passes_on_sqlite_when_the_suite_runs_on_postgresql() -> None:
    """CI runs on PostgreSQL; the embedded default (SQLite, its own write path) races too, in a run of its own."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q",
         f"{__file__}::test_twenty_reviewers_race_on_the_embedded_database_too"],
        cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "1 passed" in run.stdout


def test_a_double_click_from_two_requests_at_once_counts_one_label(admin_user) -> None:
    make_completions(1)
    queue = services.queue_create(created_by=admin_user, name="dbl", policy="random")
    rita = factories.reviewer(username="rita")
    lease = services.lease_next(queue=queue, reviewer=rita)
    results: list[bool] = []
    start = threading.Barrier(4)

    def click() -> None:
        try:
            start.wait()
            results.append(services.label_submit(reviewer=rita, assignment_id=lease.pk, value="safe").created)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [False, False, False, True]
    assert Label.objects.count() == 1
    assert QueueItem.objects.get().label_count == 1
