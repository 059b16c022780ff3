"""Writes for grading: queue and run scoring jobs, write the score log, keep each attempt's final score.

One module per subject; callers import this package (`from graders import services`) and find every
public write here. A test that replaces a name replaces it in the module that looks it up.
"""

from __future__ import annotations

from graders.services._shared import UNFINISHED
from graders.services.execution import (
    CSV_LOG_HEADER,
    _append_csv_log,
    csv_log_path,
    scoring_job_finish,
)
from graders.services.jobs import (
    TOO_LATE_TO_SCORE,
    queue_final_scoring,
    scoring_job_begin,
    scoring_job_queue_final,
    scoring_job_queue_start,
    scoring_job_request,
    scoring_job_rerun,
)
from graders.services.manual import attempt_score_enter
from graders.services.numbers import aggregate, attempt_score_update, normalise
from graders.services.recovery import (
    LOST_MESSAGE,
    scoring_job_close,
    scoring_job_heartbeat,
    scoring_jobs_recover,
)
from graders.services.workspaces import (
    attempt_user_retire,
    attempt_user_retire_queue,
    scoring_job_execute,
    workspace_prepare,
    workspace_prepare_queue,
)

__all__ = [
    "CSV_LOG_HEADER",
    "LOST_MESSAGE",
    "TOO_LATE_TO_SCORE",
    "UNFINISHED",
    "_append_csv_log",
    "aggregate",
    "attempt_score_enter",
    "attempt_score_update",
    "attempt_user_retire",
    "attempt_user_retire_queue",
    "csv_log_path",
    "normalise",
    "queue_final_scoring",
    "scoring_job_begin",
    "scoring_job_close",
    "scoring_job_execute",
    "scoring_job_finish",
    "scoring_job_heartbeat",
    "scoring_job_queue_final",
    "scoring_job_queue_start",
    "scoring_job_request",
    "scoring_job_rerun",
    "scoring_jobs_recover",
    "workspace_prepare",
    "workspace_prepare_queue",
]
