"""The review app in the Django admin: completions, queues and labels, for looking up and fixing rows.

Queues are created and run from the review pages (/review/), which keep their invariants (slots,
leases); here they are read-mostly.
"""

from django.contrib import admin

from review.models import Completion, Label, ReviewQueue


@admin.register(Completion)
class CompletionAdmin(admin.ModelAdmin):
    list_display = ["id", "source", "batch", "gold_label", "classifier_score", "created_at"]
    list_filter = ["source", "gold_label", "batch"]
    search_fields = ["prompt", "text", "external_id"]
    raw_id_fields = ["parent", "created_by"]


@admin.register(ReviewQueue)
class ReviewQueueAdmin(admin.ModelAdmin):
    list_display = ["name", "policy", "overlap", "gold_rate", "is_open", "created_at"]
    list_filter = ["policy", "is_open"]
    search_fields = ["name"]
    readonly_fields = ["policy", "overlap", "source_filter", "batch_filter", "threshold", "adjudicates"]
    filter_horizontal = ["reviewers"]


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["id", "queue", "completion", "reviewer", "value", "created_at"]
    list_filter = ["queue", "value"]
    raw_id_fields = ["assignment", "item", "completion", "reviewer", "queue"]
