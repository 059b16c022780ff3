"""Writes for leaderboards: the debounced recompute request and the snapshot it produces."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from graders.leaderboards import method, selectors
from graders.leaderboards.models import LeaderboardRecompute, LeaderboardSnapshot
from rebench_site import roles
from rebench_site.errors import NotAllowed

log = logging.getLogger(__name__)

# A queued job older than this is presumed lost (a dead broker or worker), and the next request replaces it.
STALE_AFTER = timedelta(minutes=15)


def _delay() -> timedelta:
    return timedelta(seconds=settings.LEADERBOARD_DEBOUNCE_SECONDS)


def _max_wait() -> timedelta:
    return timedelta(seconds=settings.LEADERBOARD_MAX_WAIT_SECONDS)


def leaderboard_request_recompute() -> None:
    """Scores changed: recompute the leaderboards soon, once for a whole burst of changes.

    Call it inside the transaction that writes the scores; the mark and the job follow its commit,
    so a rolled-back write asks for nothing and the job never reads data older than the change.
    """
    transaction.on_commit(_mark_dirty_and_schedule)


def _mark_dirty_and_schedule(now: datetime | None = None) -> None:
    now = now or timezone.now()
    with transaction.atomic():
        LeaderboardRecompute.objects.get_or_create(pk=LeaderboardRecompute.SINGLETON)
        # One UPDATE each: concurrent requests never lose a mark and never both send a job.
        LeaderboardRecompute.objects.filter(pk=LeaderboardRecompute.SINGLETON, dirty_since__isnull=True).update(
            dirty_since=now
        )
        LeaderboardRecompute.objects.filter(pk=LeaderboardRecompute.SINGLETON).update(
            last_request_at=now, requests=F("requests") + 1
        )
        claimed = (
            LeaderboardRecompute.objects.filter(pk=LeaderboardRecompute.SINGLETON)
            .filter(Q(scheduled_at__isnull=True) | Q(scheduled_at__lt=now - STALE_AFTER))
            .update(scheduled_at=now)
        )
    if claimed:
        _send(countdown=settings.LEADERBOARD_DEBOUNCE_SECONDS)


def _send(*, countdown: float) -> None:
    from graders.leaderboards.tasks import leaderboard_recompute_due

    try:
        leaderboard_recompute_due.apply_async(countdown=max(0.0, countdown))
    except Exception:  # a broker outage must not fail the score write; the next request re-sends once stale
        log.exception("could not queue the leaderboard recompute")


def _eager() -> bool:
    """Tasks run in the caller (CELERY_TASK_ALWAYS_EAGER): nothing can wait in a queue, so a
    deferral would call itself until the stack ran out; recompute at once instead."""
    from celery import current_app

    return bool(current_app.conf.task_always_eager)


def leaderboard_recompute_due(*, now: datetime | None = None) -> str:
    """The debounced job: wait until the burst is quiet (or the max wait is over), then recompute once.

    Returns what it did: "idle" (nothing dirty), "deferred" (re-queued for later) or "recomputed".
    """
    now = now or timezone.now()
    state = LeaderboardRecompute.objects.filter(pk=LeaderboardRecompute.SINGLETON).first()
    if state is None:
        return "idle"
    if state.dirty_since is None:
        # Conditional: a request that arrived since the read above saw this job queued and sent none.
        if LeaderboardRecompute.objects.filter(pk=state.pk, dirty_since__isnull=True).update(scheduled_at=None):
            return "idle"
        return leaderboard_recompute_due(now=max(now, timezone.now()))
    assert state.last_request_at is not None  # every request sets it, and the first one dirty_since
    due = min(state.last_request_at + _delay(), state.dirty_since + _max_wait())
    if now < due and not _eager():
        LeaderboardRecompute.objects.filter(pk=LeaderboardRecompute.SINGLETON).update(scheduled_at=now)
        _send(countdown=(due - now).total_seconds())
        return "deferred"
    seen = state.last_request_at
    leaderboard_snapshot_create(now=now)
    with transaction.atomic():
        state = LeaderboardRecompute.objects.select_for_update().get(pk=LeaderboardRecompute.SINGLETON)
        if state.last_request_at is not None and seen is not None and state.last_request_at > seen:
            # Scores changed while we computed: that change is not in this snapshot, so go again.
            state.dirty_since = state.last_request_at
            state.scheduled_at = timezone.now()
            state.save(update_fields=["dirty_since", "scheduled_at"])
            again = True
        else:
            state.dirty_since = None
            state.scheduled_at = None
            state.requests = 0
            state.save(update_fields=["dirty_since", "scheduled_at", "requests"])
            again = False
    if again and not _eager():
        _send(countdown=settings.LEADERBOARD_DEBOUNCE_SECONDS)
    return "recomputed"


def leaderboard_snapshot_create(*, now: datetime | None = None) -> LeaderboardSnapshot:
    """Compute every table and curve, one leaderboard per configuration with runs (small and full runs
    never share a curve), and store each as its configuration's latest snapshot. Returns `full`'s."""
    now = now or timezone.now()
    snapshots = [_snapshot_create(configuration=name, now=now) for name in selectors.leaderboard_configurations()]
    return snapshots[0]


def _snapshot_create(*, configuration: str, now: datetime) -> LeaderboardSnapshot:
    started = time.perf_counter()
    data = selectors.leaderboard_inputs(configuration)
    result = method.leaderboard_compute(
        data,
        resamples=settings.LEADERBOARD_BOOTSTRAP_RESAMPLES,
        seed=settings.LEADERBOARD_BOOTSTRAP_SEED,
        overrun_grace_seconds=settings.LEADERBOARD_OVERRUN_GRACE_MINUTES * 60,
    )
    payload = result.to_json()
    runs = payload.pop("runs")
    columns = list(runs[0]) if runs else []
    with transaction.atomic():
        snapshot = LeaderboardSnapshot.objects.create(
            computed_at=now,
            configuration=configuration,
            duration_seconds=time.perf_counter() - started,
            runs=data.run_count,
            data=payload,
            runs_table=selectors.runs_table_pack(columns, runs),
        )
        mine = LeaderboardSnapshot.objects.filter(configuration=configuration)
        keep = list(mine.values_list("pk", flat=True)[: settings.LEADERBOARD_SNAPSHOTS_KEPT + 1])
        mine.exclude(pk__in=keep).delete()
    return snapshot


def leaderboard_compute_now(*, by: User) -> LeaderboardSnapshot:
    """An admin's "compute now": a fresh snapshot at once, outside the debounce."""
    if not roles.is_admin(by):
        raise NotAllowed("Only admins recompute the leaderboards.")
    return leaderboard_snapshot_create()
