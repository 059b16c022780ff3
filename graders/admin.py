from django.contrib import admin

from graders.models import AttemptScore, ScoreLogEntry, ScoringJob


@admin.register(ScoringJob)
class ScoringJobAdmin(admin.ModelAdmin[ScoringJob]):
    list_display = ["id", "attempt", "kind", "status", "queue_name", "created_at", "run_seconds", "deliveries"]
    list_filter = ["status", "kind", "queue_name"]


@admin.register(ScoreLogEntry)
class ScoreLogEntryAdmin(admin.ModelAdmin[ScoreLogEntry]):
    list_display = ["attempt", "scored_at", "elapsed_seconds", "score", "message"]


@admin.register(AttemptScore)
class AttemptScoreAdmin(admin.ModelAdmin[AttemptScore]):
    list_display = ["attempt", "raw", "normalised", "valid_entries", "is_final"]
