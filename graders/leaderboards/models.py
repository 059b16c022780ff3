"""Leaderboard snapshots and the row that debounces their recomputes.

Both tables were created by the graders app and keep its names (graders_leaderboard...): moving the
models here changed Django's state only (leaderboards 0001_initial, graders 0006), never the database.
"""

from __future__ import annotations

from django.db import models


class LeaderboardSnapshot(models.Model):
    """One computation of every leaderboard table and curve; pages and the API read the latest."""

    computed_at = models.DateTimeField(db_index=True)
    # Runs of one configuration only: small and full runs never share a curve.
    configuration = models.SlugField(max_length=60, default="full", db_index=True)
    duration_seconds = models.FloatField(default=0.0, help_text="How long the computation took.")
    runs = models.PositiveIntegerField(default=0, help_text="Attempts and agent runs that went in.")
    data = models.JSONField(default=dict, help_text="Tables and curves, as the JSON export serves them.")
    # The per-run table apart from `data`: with 80,000 runs it is most of the snapshot, and only exports
    # and "My results" read it. zlib-compressed JSON, columnar ({"columns": [...], "rows": [[...], ...]}):
    # nothing queries inside it, and PostgreSQL parsing 14 MB of jsonb took longer than computing it.
    runs_table = models.BinaryField(default=b"")

    class Meta:
        db_table = "graders_leaderboardsnapshot"
        ordering = ["-computed_at", "-pk"]
        get_latest_by = "computed_at"

    def __str__(self) -> str:
        return f"leaderboard computed at {self.computed_at:%Y-%m-%d %H:%M:%S}"


class LeaderboardRecompute(models.Model):
    """The single row that debounces recomputes: bursts of score changes coalesce into one job.

    `dirty_since` is the first unprocessed change, `last_request_at` the latest; `scheduled_at` is set
    while a job is queued, so a burst sends one Celery message (and a lost one is replaced once stale).
    """

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON)
    dirty_since = models.DateTimeField(null=True, blank=True)
    last_request_at = models.DateTimeField(null=True, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    requests = models.PositiveIntegerField(default=0, help_text="Requests since the last recompute.")

    class Meta:
        db_table = "graders_leaderboardrecompute"

    def __str__(self) -> str:
        return f"leaderboard recompute (dirty since {self.dirty_since})"
