from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from graders.models import AttemptScore, LeaderboardRecompute, LeaderboardSnapshot, ScoreLogEntry, ScoringJob
from rebench_site.admin_records import RecordAdmin


@admin.register(ScoringJob)
class ScoringJobAdmin(admin.ModelAdmin):
    list_display = ["id", "attempt", "kind", "status", "queue_name", "created_at", "run_seconds", "deliveries"]
    list_filter = ["status", "kind", "queue_name"]


@admin.register(ScoreLogEntry)
class ScoreLogEntryAdmin(admin.ModelAdmin):
    list_display = ["attempt", "scored_at", "elapsed_seconds", "score", "message"]


@admin.register(AttemptScore)
class AttemptScoreAdmin(admin.ModelAdmin):
    list_display = ["attempt", "raw", "normalised", "valid_entries", "is_final"]


@admin.register(LeaderboardSnapshot)
class LeaderboardSnapshotAdmin(RecordAdmin):
    """Computed leaderboards: the pages read the latest of each configuration. Deleting an old one
    frees its space; the tables and per-run data stay off this page (megabytes, for the exports)."""

    list_display = ["computed_at", "configuration", "runs", "duration_seconds"]
    list_filter = ["configuration"]
    date_hierarchy = "computed_at"
    fields = ["computed_at", "configuration", "runs", "duration_seconds"]
    deletable = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[LeaderboardSnapshot]:
        # Never load the tables to list or show a snapshot.
        return super().get_queryset(request).defer("data", "runs_table")


@admin.register(LeaderboardRecompute)
class LeaderboardRecomputeAdmin(RecordAdmin):
    """The one row that debounces recomputes: what is pending, for a look when the leaderboard lags."""

    list_display = ["id", "dirty_since", "last_request_at", "scheduled_at", "requests"]
