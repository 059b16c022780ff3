"""Leaderboard snapshots from the database: the reads, the numbers end to end, and the debounced recompute job."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from django.db import transaction
from django.utils import timezone

from graders import services as grading
from graders.leaderboards import method, selectors, services
from graders.leaderboards.models import LeaderboardRecompute, LeaderboardSnapshot
from rebench_site.errors import NotAllowed
from tests import factories
from tests.leaderboards.leaderboard_data import ended_run, normalised
from tests.trials.celery_support import BROKERS, broker_url, queue_length, running_worker, using_broker, wait_for

AGENT = ("claude", "claude-3-5-sonnet", "triframe")


@pytest.fixture
def chat_rl(db):
    return factories.environment("ai_rd_nanogpt_chat_rl")


def _curve(data: dict[str, Any], environment: str, group: str) -> dict[float, dict[str, Any]]:
    curve = next(c for c in data["curves"] if c["environment"] == environment and c["group"] == group)
    return {p["budget_hours"]: p for p in curve["points"]}


def test_the_inputs_take_four_queries_however_many_runs(chat_rl, expert, django_assert_num_queries) -> None:
    for i in range(3):
        ended_run(chat_rl, [(1, 0.6), (2, 0.7)], user=expert)
        ended_run(chat_rl, [(1, 0.6 + i / 100)], agent=AGENT)
    # Environments, their configurations' latest constants, runs, entries.
    with django_assert_num_queries(4):
        small = selectors.leaderboard_inputs()
    for _ in range(10):
        ended_run(chat_rl, [(1, 0.6), (3, None), (5, 0.8)], agent=("other", "m", ""))
    with django_assert_num_queries(4):
        large = selectors.leaderboard_inputs()
    assert small.run_count == 6
    assert large.run_count == 16
    assert int(large.entry_run.size) == 6 + 3 + 30


def test_a_snapshot_holds_the_curves_and_tables_computed_from_the_score_logs(chat_rl, expert) -> None:
    def n(raw: float) -> float:
        return normalised(chat_rl, raw)

    ended_run(chat_rl, [(1, 0.60), (3, 0.70)], user=expert)
    ended_run(chat_rl, [(0.5, None), (6, 0.80)], user=expert)
    ended_run(chat_rl, [(2, 0.65)], label="imported-human")
    ended_run(chat_rl, [(1, 0.99)], user=expert, running=True)  # not finished: left out
    for raw in (0.55, 0.62, 0.58):
        ended_run(chat_rl, [(0.25, 0.50), (1.5, raw)], agent=AGENT, hours=2)

    snapshot = services.leaderboard_snapshot_create()
    data = snapshot.data
    assert snapshot.runs == 6

    humans = _curve(data, chat_rl.slug, method.HUMANS)
    assert humans[2.0]["value"] == pytest.approx((n(0.60) + 0 + n(0.65)) / 3)
    assert humans[8.0]["value"] == pytest.approx((n(0.70) + n(0.80) + n(0.65)) / 3)
    assert humans[16.0]["value"] == pytest.approx(method.expected_best_of_k([n(0.70), n(0.80), n(0.65)], 2))
    assert humans[32.0]["value"] is None  # 4 runs of 8 h needed, 3 there

    agent_key = "agent:" + "|".join(AGENT)
    agent = _curve(data, chat_rl.slug, agent_key)
    finals = [n(0.55), n(0.62), n(0.58)]
    assert agent[2.0]["value"] == pytest.approx(sum(finals) / 3)
    assert agent[4.0]["k"] == 2
    assert agent[4.0]["value"] == pytest.approx(method.expected_best_of_k(finals, 2))
    assert agent[8.0]["value"] is None  # best of 4 two-hour runs; there are 3

    overall = _curve(data, "overall", method.HUMANS)
    assert overall[8.0]["value"] == pytest.approx(humans[8.0]["value"])  # one environment with humans

    ada = next(h for h in data["humans"] if h["participant"] == expert.username)
    assert ada == {
        "environment": chat_rl.slug,
        "participant": expert.username,
        "user_id": expert.pk,
        "attempts": 2,
        "best": pytest.approx(n(0.80)),
        "at_2h": pytest.approx(n(0.60)),
        "at_8h": pytest.approx(n(0.80)),
    }
    [row] = [a for a in data["agents"] if a["group"] == agent_key]
    assert row["agent"] == "claude"
    assert row["model"] == "claude-3-5-sonnet"
    assert row["runs"] == 3
    assert row["mean"] == pytest.approx(sum(finals) / 3)
    assert row["best"] == pytest.approx(n(0.62))


def test_only_admins_compute_on_demand(chat_rl, expert, admin_user) -> None:
    with pytest.raises(NotAllowed):
        services.leaderboard_compute_now(by=expert)
    assert services.leaderboard_compute_now(by=admin_user).data["environments"]


def test_old_snapshots_are_pruned(chat_rl, settings) -> None:
    settings.LEADERBOARD_SNAPSHOTS_KEPT = 2
    for _ in range(5):
        latest = services.leaderboard_snapshot_create()
    assert LeaderboardSnapshot.objects.count() == 3
    assert selectors.leaderboard_latest() == latest


# --- the debounced recompute, on a real broker ----------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Celery]:
    with using_broker(broker_url("sqla", tmp_path)) as app:
        yield app


def _state() -> LeaderboardRecompute:
    return LeaderboardRecompute.objects.get(pk=LeaderboardRecompute.SINGLETON)


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_score_changes_sends_one_job(broker: Celery) -> None:
    for _ in range(5):
        with transaction.atomic():
            services.leaderboard_request_recompute()
    assert queue_length(broker, "celery") == 1
    assert _state().requests == 5
    assert _state().dirty_since is not None


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_score_change_asks_for_nothing(broker: Celery) -> None:
    def failing_write() -> None:
        with transaction.atomic():
            services.leaderboard_request_recompute()
            raise RuntimeError("the score write failed")

    with pytest.raises(RuntimeError):
        failing_write()
    assert not LeaderboardRecompute.objects.exists()
    assert queue_length(broker, "celery") == 0


@pytest.mark.django_db(transaction=True)
def test_the_job_waits_for_a_quiet_moment_then_recomputes_once(broker: Celery, settings) -> None:
    settings.LEADERBOARD_DEBOUNCE_SECONDS = 30
    settings.LEADERBOARD_MAX_WAIT_SECONDS = 300
    t0 = timezone.now()
    services._mark_dirty_and_schedule(now=t0)
    services._mark_dirty_and_schedule(now=t0 + timedelta(seconds=20))
    assert services.leaderboard_recompute_due(now=t0 + timedelta(seconds=31)) == "deferred"  # 11 s since the last
    assert queue_length(broker, "celery") == 2  # the first message and its re-queue; no second request sent one
    assert not LeaderboardSnapshot.objects.exists()
    assert services.leaderboard_recompute_due(now=t0 + timedelta(seconds=51)) == "recomputed"
    assert LeaderboardSnapshot.objects.count() == 1
    state = _state()
    assert state.dirty_since is None
    assert state.scheduled_at is None
    assert services.leaderboard_recompute_due(now=t0 + timedelta(seconds=90)) == "idle"
    assert LeaderboardSnapshot.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_never_ending_burst_still_recomputes_after_the_max_wait(broker: Celery, settings) -> None:
    settings.LEADERBOARD_DEBOUNCE_SECONDS = 30
    settings.LEADERBOARD_MAX_WAIT_SECONDS = 120
    t0 = timezone.now()
    for s in range(0, 125, 10):
        services._mark_dirty_and_schedule(now=t0 + timedelta(seconds=s))
    assert services.leaderboard_recompute_due(now=t0 + timedelta(seconds=119)) == "deferred"
    assert services.leaderboard_recompute_due(now=t0 + timedelta(seconds=121)) == "recomputed"


@pytest.mark.django_db(transaction=True)
def test_a_lost_job_is_replaced_by_the_next_request_once_stale(broker: Celery) -> None:
    t0 = timezone.now()
    services._mark_dirty_and_schedule(now=t0)
    services._mark_dirty_and_schedule(now=t0 + timedelta(minutes=1))
    assert queue_length(broker, "celery") == 1
    services._mark_dirty_and_schedule(now=t0 + services.STALE_AFTER + timedelta(seconds=1))
    assert queue_length(broker, "celery") == 2


@pytest.fixture(params=BROKERS)
def any_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Celery]:
    with using_broker(broker_url(request.param, tmp_path)) as app:
        yield app


@pytest.mark.django_db(transaction=True)
def test_a_score_change_reaches_the_leaderboard_through_a_real_worker(any_broker: Celery, settings) -> None:
    settings.LEADERBOARD_DEBOUNCE_SECONDS = 1
    env = factories.environment("ai_rd_nanogpt_chat_rl")
    run = ended_run(env, [(1, 0.6)], agent=AGENT)
    with running_worker(any_broker, queues=["celery"]):
        for _ in range(3):  # a burst: three score updates, one recompute
            with transaction.atomic():
                grading.attempt_score_update(attempt=run)
        assert wait_for(lambda: LeaderboardSnapshot.objects.exists(), timeout=30)
        assert wait_for(lambda: _state().scheduled_at is None, timeout=10)
    assert LeaderboardSnapshot.objects.count() == 1
    assert _state().dirty_since is None
    [row] = LeaderboardSnapshot.objects.get().data["agents"]
    assert row["best"] == pytest.approx(normalised(env, 0.6))


@pytest.mark.django_db(transaction=True)
def test_a_change_during_the_computation_queues_another_recompute(broker: Celery, settings, monkeypatch) -> None:
    settings.LEADERBOARD_DEBOUNCE_SECONDS = 30
    t0 = timezone.now()
    services._mark_dirty_and_schedule(now=t0)
    real_create = services.leaderboard_snapshot_create

    def create_while_a_score_arrives(**kwargs):
        snapshot = real_create(**kwargs)
        services._mark_dirty_and_schedule(now=t0 + timedelta(seconds=40))  # lands after the data was read
        return snapshot

    monkeypatch.setattr(services, "leaderboard_snapshot_create", create_while_a_score_arrives)
    assert services.leaderboard_recompute_due(now=t0 + timedelta(seconds=35)) == "recomputed"
    state = _state()
    assert state.dirty_since == t0 + timedelta(seconds=40)  # still dirty: that change is not in the snapshot
    assert state.scheduled_at is not None
    assert queue_length(broker, "celery") == 2  # the first job and the follow-up
    monkeypatch.setattr(services, "leaderboard_snapshot_create", real_create)
    assert services.leaderboard_recompute_due(now=t0 + timedelta(seconds=71)) == "recomputed"
    assert _state().dirty_since is None
    assert LeaderboardSnapshot.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_with_eager_tasks_a_score_change_recomputes_at_once_without_recursing(chat_rl) -> None:
    from rebench_site.celery import app

    # Under the CELERY_ namespace the prefixed name is the one the app reads (as the settings set it).
    app.loader.import_default_modules()  # the app's configuration read in, so the override below stays
    changes = app.conf.changes
    assert changes is not None
    saved = changes.get("CELERY_TASK_ALWAYS_EAGER")
    changes["CELERY_TASK_ALWAYS_EAGER"] = True
    try:
        assert app.conf.task_always_eager
        with transaction.atomic():
            ended_run(chat_rl, [(1, 0.6)])
            services.leaderboard_request_recompute()
    finally:
        changes["CELERY_TASK_ALWAYS_EAGER"] = saved
    assert LeaderboardSnapshot.objects.count() == 1
    assert LeaderboardSnapshot.objects.get().runs == 1
    assert LeaderboardRecompute.objects.get().dirty_since is None
