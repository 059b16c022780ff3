"""The attempt's workspace and Unix user on its workstation: prepared once at the start, retired at the end."""

from __future__ import annotations

from django.db import transaction

from environments import packages
from graders.services._shared import _queue_name
from trials import selectors as trials_selectors
from trials.models import Attempt
from workstation import layout, users, workspaces
from workstation import policy as workstation_policy
from workstation import sandbox as workstation_sandbox


def _policy(attempt: Attempt) -> workstation_sandbox.Policy:
    """The attempt's sandbox on this machine (the worker runs on its workstation), its tools in place."""
    layout.install_tools()
    return workstation_policy.local_policy(trials_selectors.attempt_sandbox_request(attempt))


def workspace_prepare(*, attempt: Attempt) -> list[str]:
    """Set up the attempt's workspace once: the starting solution (or TaskFamily.start) copied in.

    The package fills a staging folder of ours (its start script runs there, never in the
    workspace, where the expert may already be); the staging is then copied in by the attempt's
    own user inside its sandbox, never over a file that exists. The "prepared" mark lives beside
    the workspace, root's, so the expert can't make us redo it.
    """
    workspace = layout.workspace(attempt.pk)
    mark = workspace.parent / f".{workspace.name}.prepared"
    if mark.exists():
        return []
    package = packages.find(attempt.environment.slug)
    policy = _policy(attempt)
    workspaces.make(policy)
    copied: list[str] = []
    if package is not None:
        staging = layout.protected_dir() / "staging" / f"attempt-{attempt.pk}"
        with workspaces.staging_folder(staging, gid=policy.gid) as folder:
            package.prepare_staging(folder)
            copied = workspaces.populate(policy, folder)
    mark.touch()
    return copied


def attempt_user_retire(*, attempt_id: int) -> bool:
    """Once an ended attempt's final score is in: stop what it left running, drop its sandbox, expire its user.

    The workspace and the account stay (see workstation.users.attempt_user_retire); an admin's
    re-run of the scoring still works. Nothing happens to a running attempt.
    """
    attempt = Attempt.objects.filter(pk=attempt_id).first()
    if attempt is None or attempt.is_running:
        return False
    workstation_sandbox.stop(str(layout.sandbox_dir(attempt_id)), remove=True)
    return users.attempt_user_retire(attempt_id)


def workspace_prepare_queue(attempt: Attempt) -> None:
    """After commit, prepare the workspace on the attempt's workstation (its worker owns the disk)."""
    from graders.tasks import workspace_prepare as task

    attempt_id, queue = attempt.pk, _queue_name(attempt)
    transaction.on_commit(lambda: task.apply_async(args=(attempt_id,), queue=queue))


def attempt_user_retire_queue(attempt: Attempt) -> None:
    """After commit, retire the attempt's Unix user on its workstation (whose worker holds the user)."""
    from graders.tasks import attempt_user_retire as task

    attempt_id, queue = attempt.pk, _queue_name(attempt)
    transaction.on_commit(lambda: task.apply_async(args=(attempt_id,), queue=queue))
