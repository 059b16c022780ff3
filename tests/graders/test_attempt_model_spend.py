"""The attempt's model budget ledger (graders.selectors.attempt_model_spend), against sums made by hand."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from graders.models import ModelCall, ScoreLogEntry, ScoringJob
from graders.selectors import attempt_model_spend, attempt_model_spend_total
from tests.factories import AttemptFactory
from trials.models import Attempt

pytestmark = pytest.mark.django_db
T0 = timezone.now() - timedelta(hours=1)


def run(
    attempt: Attempt,
    minute: int,
    kind: str = ScoringJob.Kind.INTERMEDIATE,
    *,
    spend: Any = None,
    rerun_of: ScoringJob | None = None,
    score: float | None = 0.1,
) -> ScoringJob:
    """A finished scoring job made `minute` minutes after T0, its entry saying it spent `spend`."""
    job = ScoringJob.objects.create(
        attempt=attempt, kind=kind, queue_name="ws.test", rerun_of=rerun_of, status=ScoringJob.Status.DONE
    )
    ScoringJob.objects.filter(pk=job.pk).update(created_at=T0 + timedelta(minutes=minute))
    job.refresh_from_db()
    details = {} if spend is None else {"attempt_spend": spend}
    ScoreLogEntry.objects.create(
        attempt=attempt,
        job=job,
        scored_at=job.created_at,
        elapsed_seconds=minute * 60,
        score=score,
        message="",
        details=details,
    )
    return job


def test_the_expert_runs_before_a_job_are_summed_and_the_starting_run_and_admin_reruns_are_not() -> None:
    attempt = AttemptFactory.create()
    run(attempt, 0, ScoringJob.Kind.START, spend={"tokens": 1000, "cost": 1.0})  # the site's measurement
    first = run(attempt, 10, spend={"tokens": 300, "cost": 0.25})
    second = run(attempt, 20, spend={"tokens": 50, "cost": 0.05}, score=None)  # a NaN run still paid
    run(attempt, 30)  # a run whose scorer said nothing of its spend (it crashed): nothing known
    run(attempt, 40, spend={"tokens": 400, "cost": 0.5}, rerun_of=first)  # an admin's re-measurement
    final = run(attempt, 50, ScoringJob.Kind.FINAL, spend={"tokens": 70, "cost": 0.07})
    # Before the final run: 300 + 50 tokens, $0.25 + $0.05.
    assert attempt_model_spend(final) == {"tokens": 350, "cost": 0.3}
    # Before the second run: the first alone.
    assert attempt_model_spend(second) == {"tokens": 300, "cost": 0.25}
    # Before the first: nothing (the starting run is not the expert's).
    assert attempt_model_spend(first) == {"tokens": 0, "cost": 0.0}
    # An admin's re-run of the second run is given what the second was given, whatever came after.
    rerun = run(attempt, 60, rerun_of=second)
    assert attempt_model_spend(rerun) == {"tokens": 300, "cost": 0.25}
    # After the final run: 350 + 70 tokens, $0.30 + $0.07.
    later = run(attempt, 70)
    assert attempt_model_spend(later) == {"tokens": 420, "cost": 0.37}


def test_another_attempts_runs_and_spends_that_are_not_numbers_count_for_nothing() -> None:
    attempt, other = AttemptFactory.create(), AttemptFactory.create()
    run(other, 5, spend={"tokens": 5000, "cost": 9.0})
    run(attempt, 10, spend={"tokens": "9999", "cost": True})
    run(attempt, 20, spend={"tokens": -5, "cost": "nan"})  # as work.jsonable stores a NaN
    run(attempt, 30, spend=["tokens", 7])
    run(attempt, 40, spend={"tokens": 12, "cost": 0.5})
    last = run(attempt, 50)
    assert attempt_model_spend(last) == {"tokens": 12, "cost": 0.5}


def call(attempt: Attempt, minute: int, *, reserved: int, used: int | None, cost: float | None = None) -> None:
    """A shell call made `minute` minutes after T0: settled at `used` tokens, or still in flight (None)."""
    ModelCall.objects.create(
        attempt=attempt,
        created_at=T0 + timedelta(minutes=minute),
        reserved_tokens=reserved,
        reserved_cost=reserved / 1e6,
        tokens=used,
        cost=cost,
        settled_at=None if used is None else T0 + timedelta(minutes=minute),
    )


def test_the_shells_calls_count_settled_at_what_they_used_and_in_flight_at_their_worst_case() -> None:
    attempt = AttemptFactory.create()
    call(attempt, 5, reserved=157, used=109, cost=0.000125)
    first = run(attempt, 10, spend={"tokens": 300, "cost": 0.25})
    call(attempt, 15, reserved=200, used=None)  # in flight (or lost mid-call): its worst case, $0.0002
    second = run(attempt, 20)
    # Before the first run: the one settled call, 109 tokens, $0.000125. Before the second:
    # 109 + 300 + 200 = 609 tokens, $0.000125 + $0.25 + $0.0002 = $0.250325.
    assert attempt_model_spend(first) == {"tokens": 109, "cost": pytest.approx(0.000125)}
    assert attempt_model_spend(second) == {"tokens": 609, "cost": pytest.approx(0.250325)}
    assert attempt_model_spend_total(attempt.pk) == {"tokens": 609, "cost": pytest.approx(0.250325)}
