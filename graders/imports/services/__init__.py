"""Writes for run imports and the harness API: runs in as Attempts, their score logs, all or nothing.

One module per subject: run imports (`run_imports`), the bulk write they end in (`writing`) and the
harness API (`harness`); callers import this package (`from graders.imports import services`) and find
every public write here. A test that replaces a name replaces it in the module that looks it up.
"""

from __future__ import annotations

from graders.imports.services.harness import agent_run_create, agent_run_finish, agent_run_log_score
from graders.imports.services.run_imports import (
    SOURCE_OF_KIND,
    WRITE_TRIES,
    configuration_name_check,
    refuse_if_too_large,
    run_import_create,
    run_import_execute,
)
from graders.imports.services.writing import (
    COPY_ROWS,
    ENTRY_COLUMNS,
    SCORE_COLUMNS,
    WRITE_CHUNK,
    runs_write,
)
from rebench_site.errors import ServiceError

__all__ = [
    "COPY_ROWS",
    "ENTRY_COLUMNS",
    "SCORE_COLUMNS",
    "SOURCE_OF_KIND",
    "WRITE_CHUNK",
    "WRITE_TRIES",
    "ServiceError",
    "agent_run_create",
    "agent_run_finish",
    "agent_run_log_score",
    "configuration_name_check",
    "refuse_if_too_large",
    "run_import_create",
    "run_import_execute",
    "runs_write",
]
