"""Writes for trials: workstations, booking, and the attempt lifecycle on a server-owned clock.

One module per subject; callers import this package (`from trials import services`) and find every
public write here. A test that replaces a name replaces it in the module that looks it up.
"""

from __future__ import annotations

from trials.services.attempts import (
    ADMIN_PAUSE_REASONS,
    EXPERT_PAUSE_REASONS,
    NOTE_MAX_CHARS,
    attempt_add_note,
    attempt_add_pause,
    attempt_clock_start,
    attempt_end_by_admin,
    attempt_exclude,
    attempt_include,
    attempt_pause,
    attempt_preparation_fail,
    attempt_preparation_retry,
    attempt_resume,
    attempt_start,
    attempt_submit,
    attempt_workspace_mark_ready,
)
from trials.services.booking import (
    BOOKING_CLOCK_SKEW,
    expert_attempts_counted,
    expert_attempts_counted_q,
    gpus_choose,
    gpus_free,
    gpus_out_of_service,
    reservation_cancel,
    reservation_change_end,
    reservation_create,
    reservation_min_length,
    workstation_meets,
)
from trials.services.deadlines import (
    attempt_end_if_overdue,
    attempt_enforce_deadline,
    attempts_end_overdue,
    ends_overdue_attempt_first,
)
from trials.services.files import attempt_file_download, attempt_file_upload
from trials.services.outages import (
    attempt_outage_pause,
    attempt_outage_resume,
    is_outage_pause,
    workstation_silent_since,
    workstations_watch,
)
from trials.services.ssh_access import (
    ssh_key_add,
    ssh_key_create_for_attempt,
    ssh_key_delete,
)
from trials.services.sync import (
    attempt_sandbox_control_send,
    attempt_sandbox_sync,
    attempt_terminals_group,
    terminals_end_for_attempt,
)
from trials.services.terminals import (
    NOTICE_MAX_CHARS,
    RECORDER_EXIT_SECONDS,
    TerminalAccess,
    attempt_token_issue,
    terminal_session_open,
    terminals_finish,
    terminals_send_notice,
)
from trials.services.workstations import (
    gpu_set_problem,
    workstation_record_heartbeat,
    workstation_register,
    workstation_set_status,
    workstation_update,
)

__all__ = [
    "ADMIN_PAUSE_REASONS",
    "BOOKING_CLOCK_SKEW",
    "EXPERT_PAUSE_REASONS",
    "NOTE_MAX_CHARS",
    "NOTICE_MAX_CHARS",
    "RECORDER_EXIT_SECONDS",
    "TerminalAccess",
    "attempt_add_note",
    "attempt_add_pause",
    "attempt_clock_start",
    "attempt_end_by_admin",
    "attempt_end_if_overdue",
    "attempt_enforce_deadline",
    "attempt_exclude",
    "attempt_file_download",
    "attempt_file_upload",
    "attempt_include",
    "attempt_outage_pause",
    "attempt_outage_resume",
    "attempt_pause",
    "attempt_preparation_fail",
    "attempt_preparation_retry",
    "attempt_resume",
    "attempt_sandbox_control_send",
    "attempt_sandbox_sync",
    "attempt_start",
    "attempt_submit",
    "attempt_terminals_group",
    "attempt_token_issue",
    "attempt_workspace_mark_ready",
    "attempts_end_overdue",
    "ends_overdue_attempt_first",
    "expert_attempts_counted",
    "expert_attempts_counted_q",
    "gpu_set_problem",
    "gpus_choose",
    "gpus_free",
    "gpus_out_of_service",
    "is_outage_pause",
    "reservation_cancel",
    "reservation_change_end",
    "reservation_create",
    "reservation_min_length",
    "ssh_key_add",
    "ssh_key_create_for_attempt",
    "ssh_key_delete",
    "terminal_session_open",
    "terminals_end_for_attempt",
    "terminals_finish",
    "terminals_send_notice",
    "workstation_meets",
    "workstation_record_heartbeat",
    "workstation_register",
    "workstation_set_status",
    "workstation_silent_since",
    "workstation_update",
    "workstations_watch",
]
