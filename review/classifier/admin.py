"""Django admin for the classifier: versions (read-mostly), their scores (read-only), red-team attempts."""

from django.contrib import admin

from rebench_site.admin_records import RecordAdmin
from review.classifier.models import ClassifierScore, ClassifierVersion, RedTeamAttempt


@admin.register(ClassifierVersion)
class ClassifierVersionAdmin(admin.ModelAdmin[ClassifierVersion]):
    list_display = ("id", "status", "is_active", "threshold", "injurious_count", "safe_count", "created_at")
    list_filter = ("status", "is_active")
    # Activation and the threshold go through the services (they rescore and keep one active).
    readonly_fields = ("is_active", "threshold", "metrics", "weights", "scored_count", "status")


@admin.register(RedTeamAttempt)
class RedTeamAttemptAdmin(admin.ModelAdmin[RedTeamAttempt]):
    list_display = ("id", "reviewer", "started_at", "submitted_at", "final_score", "rewrite")
    list_select_related = ("reviewer", "rewrite")
    raw_id_fields = ("start_completion", "rewrite", "version")


@admin.register(ClassifierScore)
class ClassifierScoreAdmin(RecordAdmin[ClassifierScore]):
    """Each version's score of each completion, as its rescoring job wrote them: for reading only."""

    list_display = ("id", "version", "completion", "score")
    list_filter = ("version",)
    list_select_related = ("version", "completion")
    search_fields = ("completion__id__exact", "completion__external_id")
    raw_id_fields = ("version", "completion")
