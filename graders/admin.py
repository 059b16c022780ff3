from django.contrib import admin

from graders.models import AttemptScore, ModelCall, ScoreLogEntry, ScoringJob


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


@admin.register(ModelCall)
class ModelCallAdmin(admin.ModelAdmin[ModelCall]):
    list_display = ["attempt", "created_at", "reserved_tokens", "tokens", "cost", "settled_at"]
    list_select_related = ["attempt__environment", "attempt__user"]
