"""The review app in the Django admin: completions, queues and labels, for looking up and fixing rows.

Queues are created and run from the review pages (/review/), which keep their invariants (slots,
leases); here they are read-mostly.
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from rebench_site.admin_records import RecordAdmin
from review.models import Assignment, Completion, ImportJob, Label, LabelRevision, QueueItem, ReviewQueue, Slot


@admin.register(Completion)
class CompletionAdmin(admin.ModelAdmin[Completion]):
    list_display = ["id", "source", "batch", "gold_label", "classifier_score", "created_at"]
    list_filter = ["source", "gold_label", "batch"]
    search_fields = ["prompt", "text", "external_id"]
    raw_id_fields = ["parent", "created_by"]


@admin.register(ReviewQueue)
class ReviewQueueAdmin(admin.ModelAdmin[ReviewQueue]):
    list_display = ["name", "policy", "overlap", "gold_rate", "min_seconds_per_item", "is_open", "created_at"]
    list_filter = ["policy", "is_open"]
    search_fields = ["name"]
    readonly_fields = ["policy", "overlap", "source_filter", "batch_filter", "threshold", "adjudicates"]
    filter_horizontal = ["reviewers"]


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin[Label]):
    list_display = ["id", "queue", "completion", "reviewer", "value", "created_at", "edited_at"]
    list_filter = ["queue", "value"]
    raw_id_fields = ["assignment", "item", "completion", "reviewer", "queue"]


@admin.register(LabelRevision)
class LabelRevisionAdmin(admin.ModelAdmin[LabelRevision]):
    """The history reviewers write by editing their labels: for reading, never for rewriting."""

    list_display = ["id", "label", "changed_by", "value_before", "value_after", "changed_at"]
    list_select_related = ["changed_by"]
    raw_id_fields = ["label", "changed_by"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


# Items, slots and leases are the queues' machinery: the review pages add them and the lease service
# moves them, counts and all. Here they are for looking up, never for editing.


@admin.register(QueueItem)
class QueueItemAdmin(RecordAdmin[QueueItem]):
    list_display = ["id", "queue", "completion", "is_gold", "label_count", "sort_key", "created_at"]
    list_filter = ["is_gold", "queue"]
    list_select_related = ["queue", "completion"]
    search_fields = ["queue__name", "completion__id__exact", "completion__external_id"]


@admin.register(Slot)
class SlotAdmin(RecordAdmin[Slot]):
    list_display = ["id", "queue", "item", "index", "filled", "lease", "lease_expires_at"]
    list_filter = ["filled", "queue"]
    list_select_related = ["queue", "item__queue", "lease__reviewer"]
    search_fields = ["queue__name", "item__id__exact", "item__completion__id__exact"]


@admin.register(Assignment)
class AssignmentAdmin(RecordAdmin[Assignment]):
    list_display = ["id", "reviewer", "queue", "item", "slot", "state", "leased_at", "expires_at"]
    list_filter = ["state", "queue"]
    list_select_related = ["reviewer", "queue", "item__queue", "slot"]
    search_fields = ["reviewer__username", "queue__name", "item__id__exact"]
    date_hierarchy = "leased_at"


@admin.register(ImportJob)
class ImportJobAdmin(RecordAdmin[ImportJob]):
    """Uploads of completions: read-only records of how each went; deleting one leaves its completions."""

    list_display = ["id", "original_name", "format", "batch", "status", "created_count", "created_by", "created_at"]
    list_filter = ["status", "format"]
    list_select_related = ["created_by"]
    search_fields = ["original_name", "batch", "created_by__username"]
    deletable = True

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Not while the worker is still writing it.
        running = obj is not None and obj.status in (ImportJob.Status.PENDING, ImportJob.Status.RUNNING)
        return not running and super().has_delete_permission(request, obj)
