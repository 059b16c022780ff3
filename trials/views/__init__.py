"""Pages for experts (book, attempt) and admins (schedule, workstations); thin, they call services.

One module per subject; callers import this package (`from trials import views`) and find every view
here. A test that replaces a name replaces it in the module that looks it up.
"""

from __future__ import annotations

from trials.views._shared import DAYS
from trials.views.attempt import (
    attempt_clock,
    attempt_detail,
    attempt_end,
    attempt_exclude,
    attempt_include,
    attempt_live,
    attempt_message,
    attempt_note,
    attempt_pause,
    attempt_preparation_retry,
    attempt_resume,
    attempt_start,
    attempt_submit,
    attempt_technical_pause,
)
from trials.views.booking import book_choose, book_environment, my_trials, reservation_cancel
from trials.views.files import attempt_files_download, attempt_files_upload
from trials.views.recordings import terminal_cast, terminal_replay
from trials.views.schedule import (
    ATTEMPTS_PER_PAGE,
    RESERVATIONS_PER_PAGE,
    attempt_list,
    reservation_end,
    reservation_list,
    schedule,
)
from trials.views.ssh import attempt_ssh_key, ssh_key_delete, ssh_keys
from trials.views.workstations import (
    gpu_problem,
    workstation_agent_token,
    workstation_detail,
    workstation_list,
    workstation_setup,
)

__all__ = [
    "ATTEMPTS_PER_PAGE",
    "DAYS",
    "RESERVATIONS_PER_PAGE",
    "attempt_clock",
    "attempt_detail",
    "attempt_end",
    "attempt_exclude",
    "attempt_files_download",
    "attempt_files_upload",
    "attempt_include",
    "attempt_list",
    "attempt_live",
    "attempt_message",
    "attempt_note",
    "attempt_pause",
    "attempt_preparation_retry",
    "attempt_resume",
    "attempt_ssh_key",
    "attempt_start",
    "attempt_submit",
    "attempt_technical_pause",
    "book_choose",
    "book_environment",
    "gpu_problem",
    "my_trials",
    "reservation_cancel",
    "reservation_end",
    "reservation_list",
    "schedule",
    "ssh_key_delete",
    "ssh_keys",
    "terminal_cast",
    "terminal_replay",
    "workstation_agent_token",
    "workstation_detail",
    "workstation_list",
    "workstation_setup",
]
