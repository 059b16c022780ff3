"""Reads for review: consensus, queue state and progress, reviewer throughput and pace, a reviewer's own
labels, the admin's completion list, exports. Agreement between reviewers (kappas, alpha) is review.agreement.

One module per subject:

- `consensus`: a completion's majority label, and a queue's disagreements.
- `queues`: the queues a reviewer may work, their progress, and the admin's overview of every queue.
- `reviewers`: per-reviewer stats (labels, time, gold accuracy, pace) and the labeling page's throughput.
- `labels`: a reviewer's own labels, and whether each may still be edited.
- `completions`: completion counts, and the admin's completion list with its label counts.
- `exports`: a queue's labels as JSON lines.

`_shared` holds CATEGORIES, the column order they share. Callers use the names below
(`from review import selectors`; `selectors.queue_progress(...)`); a test that replaces a name replaces
it in the module that looks it up.
"""

from __future__ import annotations

from review.selectors._shared import CATEGORIES
from review.selectors.completions import (
    COMPLETION_LABEL_STATES,
    completion_counts,
    completions_for_admin,
    label_counts,
)
from review.selectors.consensus import completion_consensus, queue_disagreements
from review.selectors.exports import labels_export_lines
from review.selectors.labels import LabelRow, label_edit_refusal, label_rows, labels_of_reviewer
from review.selectors.queues import QueueProgress, queue_overview, queue_progress, queues_for_reviewer
from review.selectors.reviewers import ReviewerStats, reviewer_stats, reviewer_throughput

__all__ = [
    "CATEGORIES",
    "COMPLETION_LABEL_STATES",
    "LabelRow",
    "QueueProgress",
    "ReviewerStats",
    "completion_consensus",
    "completion_counts",
    "completions_for_admin",
    "label_counts",
    "label_edit_refusal",
    "label_rows",
    "labels_export_lines",
    "labels_of_reviewer",
    "queue_disagreements",
    "queue_overview",
    "queue_progress",
    "queues_for_reviewer",
    "reviewer_stats",
    "reviewer_throughput",
]
