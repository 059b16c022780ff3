"""Readers of run files: each turns a file into checked RunRecords, or refuses it naming the line and field.

One module per format, with what they share (`_shared`), the shared checks (`validation`) and the
detection that picks a reader (`detection`); callers import this package (`from graders.imports import
formats`) and find every public name here. A test that replaces a name replaces it in the module that looks it up.
"""

from __future__ import annotations

from graders.imports.formats._shared import (
    BOM,
    KIND_FILE,
    KIND_INSPECT,
    KIND_METR_RUNS,
    MAX_ID_LENGTH,
    MAX_LABEL_LENGTH,
    PARTICIPANT_KINDS,
    EntryRecord,
    ImportRefused,
    Progress,
    RunRecord,
)
from graders.imports.formats.detection import detect_kind, read, records
from graders.imports.formats.inspect_logs import INSPECT_CLOCK_SLACK_SECONDS, read_inspect
from graders.imports.formats.metr_runs import read_metr_runs
from graders.imports.formats.run_file import OWN_FIELDS, read_run_file
from graders.imports.formats.validation import Environments, check_run, number, text, when

__all__ = [
    "BOM",
    "INSPECT_CLOCK_SLACK_SECONDS",
    "KIND_FILE",
    "KIND_INSPECT",
    "KIND_METR_RUNS",
    "MAX_ID_LENGTH",
    "MAX_LABEL_LENGTH",
    "OWN_FIELDS",
    "PARTICIPANT_KINDS",
    "EntryRecord",
    "Environments",
    "ImportRefused",
    "Progress",
    "RunRecord",
    "check_run",
    "detect_kind",
    "number",
    "read",
    "read_inspect",
    "read_metr_runs",
    "read_run_file",
    "records",
    "text",
    "when",
]
