from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from graders.leaderboards.models import LeaderboardRecompute, LeaderboardSnapshot
from rebench_site.admin_records import RecordAdmin


@admin.register(LeaderboardSnapshot)
class LeaderboardSnapshotAdmin(RecordAdmin[LeaderboardSnapshot]):
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
class LeaderboardRecomputeAdmin(RecordAdmin[LeaderboardRecompute]):
    """The one row that debounces recomputes: what is pending, for a look when the leaderboard lags."""

    list_display = ["id", "dirty_since", "last_request_at", "scheduled_at", "requests"]
