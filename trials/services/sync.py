"""What the workstation and the open terminals hear after an attempt changes: its deadline, pause or end.

Below the attempt writes: they all call here, after commit, and nothing here calls them."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from trials.models import Attempt, SSHKey, TerminalSession, Workstation

log = logging.getLogger(__name__)


def attempt_terminals_group(attempt_id: int) -> str:
    """The channel-layer group of an attempt's terminal consumers: control events only, never bytes."""
    return f"attempt-{attempt_id}-terminals"


def _send_to_terminals(attempt_id: int, event: dict[str, str]) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(attempt_terminals_group(attempt_id), event)
    except Exception:  # the channel layer down must not fail the request that sent the event
        log.exception("attempt %s: could not send %s to its terminals", attempt_id, event.get("type"))


def _control_queue(workstation: Workstation | None) -> str | None:
    return workstation.control_queue if workstation is not None else settings.LOCAL_WORKSTATION_QUEUE


def _queue_deadline_check(attempt_id: int, deadline: datetime) -> None:
    from trials.tasks import attempt_enforce_deadline

    attempt_enforce_deadline.apply_async(args=(attempt_id,), eta=deadline)


def _schedule_deadline(attempt: Attempt) -> None:
    """After commit, queue the deadline task for the attempt's current deadline (if it has one), and
    tell the workstation: it freezes the sandbox during a pause and at the deadline by itself."""
    attempt_sandbox_sync(attempt)
    deadline = Attempt.objects.prefetch_related("pauses").get(pk=attempt.pk).deadline()
    if deadline is None:
        return
    transaction.on_commit(lambda: _queue_deadline_check(attempt.pk, deadline))


def attempt_sandbox_sync(attempt: Attempt, *, tell_terminals: bool = True) -> None:
    """After commit: the workstation hears the attempt's pause, deadline or end, and freezes or thaws its sandbox.

    A lost or late message costs nothing the expert could gain: the workstation freezes at the last
    deadline it heard, and pauses only ever move deadlines later. `tell_terminals` False: nothing
    changed that an open tab must hear (the outage sweep renewing the word's lease).
    """
    if not attempt.is_local or attempt.workstation_id is None:
        return
    attempt_id = attempt.pk
    queue = _control_queue(Workstation.objects.filter(pk=attempt.workstation_id).first())

    def send() -> None:
        from trials.tasks import attempt_sandbox_control

        try:
            attempt_sandbox_control.apply_async(args=(attempt_id,), queue=queue)  # type: ignore[arg-type]  # None is the default queue
        except Exception:  # the broker down: the workstation keeps the last deadline it heard
            log.exception("attempt %s: could not queue its sandbox control", attempt_id)
        if tell_terminals:
            _send_to_terminals(attempt_id, {"type": "attempt.frozen"})

    transaction.on_commit(send)


def attempt_sandbox_control_send(*, attempt_id: int) -> dict[str, object] | None:
    """On the workstation's control queue: send the attempt's current pause/deadline/end to its sandbox."""
    from asgiref.sync import async_to_sync

    from trials import selectors

    attempt = Attempt.objects.select_related("workstation").filter(pk=attempt_id).first()
    if attempt is None or not attempt.is_local or attempt.workstation_id is None:
        return None
    control = selectors.attempt_sandbox_control(attempt_id)
    backend = selectors.workstation_backend(attempt.workstation)

    async def send() -> dict[str, object]:
        try:
            return await backend.sandbox_control(attempt_id, control)
        finally:
            await backend.disconnect()

    return async_to_sync(send)()


def terminals_end_for_attempt(*, attempt_id: int, reason: str) -> None:
    """After an attempt ends: tell its terminal consumers (they close), then end it on the workstation.

    Best-effort: ending the attempt has committed already, and a terminal left open here is closed
    when its consumer next checks (it refuses ended attempts). The sandbox was told to freeze by
    the ending itself (attempt_sandbox_sync).
    """
    had_terminals = TerminalSession.objects.filter(attempt_id=attempt_id).exists()
    # An SSH session has no TerminalSession until the end brings its recording in: a key means there may be one.
    owner = Attempt.objects.filter(pk=attempt_id).values("user")
    had_terminals = had_terminals or SSHKey.objects.filter(user__in=owner).exists()
    TerminalSession.objects.filter(attempt_id=attempt_id, ended_at__isnull=True).update(
        ended_at=timezone.now(), end_reason=reason[:200]
    )
    _send_to_terminals(attempt_id, {"type": "attempt.ended", "reason": reason})
    if not had_terminals:
        return  # no shell was ever opened: nothing to end on the workstation
    attempt = Attempt.objects.select_related("workstation").filter(pk=attempt_id).first()
    # Whether or not a browser is attached: end the terminal holders and the sandbox's processes on the
    # workstation (retried with backoff while it is unreachable) and merge the recordings into storage.
    _queue_terminals_finish(attempt_id, attempt.workstation if attempt else None)


def _queue_terminals_finish(attempt_id: int, workstation: Workstation | None) -> None:
    from trials.tasks import attempt_terminals_finish

    try:
        attempt_terminals_finish.apply_async(
            args=(attempt_id,),
            queue=_control_queue(workstation),  # type: ignore[arg-type]  # None is the default queue
        )
    except Exception:  # the broker down must not fail the request; the recordings stay readable from the spool
        log.exception("attempt %s: could not queue the end of its terminals", attempt_id)
