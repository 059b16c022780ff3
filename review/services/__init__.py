"""Writes for review, one module per subject:

- `completions`: the checks a completion's text and prompt pass; red-team rewrites into verify queues.
- `imports`: JSONL/CSV completion imports, checked line by line and run as a Celery job.
- `queues`: building a queue (policy order, overlap slots, gold items) and closing it.
- `leases`: a reviewer's next item, the heartbeat that renews leases, skip and release.
- `labels`: labels on leased slots, edits and undo, and the adjudication queue they feed.

`_common` holds the helpers several of them use. The agreement statistics are reads: `review.agreement`.
Callers use the names below (`from review import services`; `services.label_submit(...)`).
"""

from review.services._common import NoLease
from review.services.completions import completion_check_text, completion_submit_rewrite
from review.services.imports import IMPORT_FIELDS, ImportError_, completions_parse, import_job_create, import_job_run
from review.services.labels import LabelResult, label_edit, label_submit, label_undo
from review.services.leases import lease_next, lease_release, lease_renew, lease_skip, reviewer_may_work
from review.services.queues import current_threshold, queue_close, queue_create

__all__ = [
    "IMPORT_FIELDS",
    "ImportError_",
    "LabelResult",
    "NoLease",
    "completion_check_text",
    "completion_submit_rewrite",
    "completions_parse",
    "current_threshold",
    "import_job_create",
    "import_job_run",
    "label_edit",
    "label_submit",
    "label_undo",
    "lease_next",
    "lease_release",
    "lease_renew",
    "lease_skip",
    "queue_close",
    "queue_create",
    "reviewer_may_work",
]
