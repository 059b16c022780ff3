"""The review app in the Django admin: completions, queues and labels, for looking up and fixing rows.

Queues are created and run from the review pages (/review/), which keep their invariants (slots,
leases); here they are read-mostly.
"""

from django.contrib import admin

from review.models import Completion, Label, LabelRevision, ReviewQueue


@admin.register(Completion)
class CompletionAdmin(admin.ModelAdmin):
    list_display = ["id", "source", "batch", "gold_label", "classifier_score", "created_at"]
    list_filter = ["source", "gold_label", "batch"]
    search_fields = ["prompt", "text", "external_id"]
    raw_id_fields = ["parent", "created_by"]


@admin.register(ReviewQueue)
class ReviewQueueAdmin(admin.ModelAdmin):
    list_display = ["name", "policy", "overlap", "gold_rate", "min_seconds_per_item", "is_open", "created_at"]
    list_filter = ["policy", "is_open"]
    search_fields = ["name"]
    readonly_fields = ["policy", "overlap", "source_filter", "batch_filter", "threshold", "adjudicates"]
    filter_horizontal = ["reviewers"]


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["id", "queue", "completion", "reviewer", "value", "created_at", "edited_at"]
    list_filter = ["queue", "value"]
    raw_id_fields = ["assignment", "item", "completion", "reviewer", "queue"]


@admin.register(LabelRevision)
class LabelRevisionAdmin(admin.ModelAdmin):
    """The history reviewers write by editing their labels: for reading, never for rewriting."""

    list_display = ["id", "label", "changed_by", "value_before", "value_after", "changed_at"]
    list_select_related = ["changed_by"]
    raw_id_fields = ["label", "changed_by"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
