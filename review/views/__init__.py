"""Review pages: reviewers' queues, the labeling page with its partials and their own labels; admins' queue,
quality, completion and import pages.

One module per subject:

- `labelling`: the reviewer's home and the labeling page with its partials (next item, submit, skip,
  undo, lease renew and release).
- `labels`: a reviewer's own labels, and editing one.
- `queues`: admins' queue pages (list, new, detail, export, close) and the reviewers' quality page.
- `completions`: admins' completion list.
- `imports`: admins' import page and an import job's progress.

Callers import this package (`from review import views`) and find every view here. A test that
replaces a name replaces it in the module that looks it up.
"""

from __future__ import annotations

from review.views.completions import COMPLETIONS_PER_PAGE, completion_list
from review.views.imports import import_job, import_page
from review.views.labelling import (
    SKIP_MESSAGE,
    item_next,
    label_skip,
    label_submit,
    label_undo,
    lease_release,
    lease_renew,
    queue_label,
    review_home,
)
from review.views.labels import LABELS_PER_PAGE, label_edit, my_labels
from review.views.queues import queue_close, queue_detail, queue_export, queue_list, queue_new, reviewer_list

__all__ = [
    "COMPLETIONS_PER_PAGE",
    "LABELS_PER_PAGE",
    "SKIP_MESSAGE",
    "completion_list",
    "import_job",
    "import_page",
    "item_next",
    "label_edit",
    "label_skip",
    "label_submit",
    "label_undo",
    "lease_release",
    "lease_renew",
    "my_labels",
    "queue_close",
    "queue_detail",
    "queue_export",
    "queue_label",
    "queue_list",
    "queue_new",
    "review_home",
    "reviewer_list",
]
