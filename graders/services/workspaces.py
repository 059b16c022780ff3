"""The attempt's workspace and Unix user on its workstation: prepared once at the start, retired at the end."""

from __future__ import annotations

from django.db import transaction

from graders.models import ScoringJob
from graders.services._shared import _queue_name
from trials.models import Attempt
from workstation import scoring
from workstation.agent import work


def workspace_prepare(*, attempt: Attempt) -> list[str]:
    """Prepare the attempt's workspace on this machine, as the local workstation's worker does (work.prepare)."""
    # Here, not at the top: graders.services.agent imports the jobs module, which imports this one.
    from graders.services.agent import attempt_spec

    return work.prepare(attempt_spec(attempt))


def scoring_job_execute(*, job: ScoringJob) -> tuple[scoring.Outcome, str]:
    """Run the job's scorer on this machine, as the local workstation's worker does (work.score); writes nothing."""
    from graders.services.agent import scoring_job_spec

    outcome, status = work.score(scoring_job_spec(job))
    return outcome, ScoringJob.Status.DONE if status == work.DONE else ScoringJob.Status.FAILED


def attempt_user_retire(*, attempt_id: int) -> bool:
    """Once an ended attempt's final score is in: stop what it left running, drop its sandbox, expire its user.

    On this machine, as the local workstation's worker does. The workspace and the account stay (see
    workstation.users.attempt_user_retire); an admin's re-run of the scoring still works. Nothing
    happens to a running attempt.
    """
    from graders.services.agent import agent_retirement

    return agent_retirement(attempt_id=attempt_id, workstation=None) and work.retire(attempt_id)


def workspace_prepare_queue(attempt: Attempt) -> None:
    """After commit, prepare the workspace on the attempt's workstation (its worker owns the disk)."""
    from workstation.agent.tasks import workspace_prepare as task

    attempt_id, queue = attempt.pk, _queue_name(attempt)
    transaction.on_commit(lambda: task.apply_async(args=(attempt_id,), queue=queue))


def attempt_user_retire_queue(attempt: Attempt) -> None:
    """After commit, retire the attempt's Unix user on its workstation (whose worker holds the user)."""
    from workstation.agent.tasks import attempt_user_retire as task

    attempt_id, queue = attempt.pk, _queue_name(attempt)
    transaction.on_commit(lambda: task.apply_async(args=(attempt_id,), queue=queue))
