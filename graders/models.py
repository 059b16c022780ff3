"""Turning work into numbers: scoring jobs, the score log and each attempt's final score."""

from __future__ import annotations

import math
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class ScoringJob(models.Model):
    """One request to run an environment's scorer on an attempt's workspace.

    The id travels in the Celery message: a redelivered or retried message finds the job done
    and writes nothing, so a job yields at most one score-log entry.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    class Kind(models.TextChoices):
        # The starting solution, scored once the workspace is prepared: the attempt's clock starts when it is.
        START = "start", "starting solution"
        INTERMEDIATE = "intermediate", "intermediate"
        FINAL = "final", "final"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    attempt = models.ForeignKey("trials.Attempt", on_delete=models.CASCADE, related_name="scoring_jobs")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.INTERMEDIATE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    queue_name = models.CharField(max_length=100)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    rerun_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reruns")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deliveries = models.PositiveIntegerField(default=0, help_text="How many times a worker picked the job up.")
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="When the worker running it last said it was alive."
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"scoring job {self.pk} ({self.status})"

    @property
    def wait_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.started_at - self.created_at).total_seconds()

    @property
    def run_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class ScoreLogEntry(models.Model):
    """One scorer result; `score` NULL is NaN (invalid): SQLite can't store a NaN float."""

    attempt = models.ForeignKey("trials.Attempt", on_delete=models.CASCADE, related_name="score_log")
    job = models.OneToOneField(ScoringJob, on_delete=models.SET_NULL, null=True, blank=True, related_name="entry")
    scored_at = models.DateTimeField()
    elapsed_seconds = models.FloatField(help_text="Working time on the attempt clock when scoring began.")
    score = models.FloatField(null=True, blank=True)
    message = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    scorer_digest = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the scorer that ran.")

    class Meta:
        ordering = ["scored_at", "pk"]
        verbose_name_plural = "score log entries"

    def __str__(self) -> str:
        return f"score {self.raw} for attempt {self.attempt_id}"

    @property
    def is_valid(self) -> bool:
        return self.score is not None and math.isfinite(self.score)

    @property
    def raw(self) -> float:
        return self.score if self.score is not None else math.nan

    @property
    def verdict(self) -> str:
        """valid; invalid; or untimed: the trusted scorer found every answer correct but had no GPU to
        time it (a speed task on a machine without one), so there is no score, through no fault of the answer."""
        if self.is_valid:
            return "valid"
        details = self.details if isinstance(self.details, dict) else {}
        if details.get("correct") is True and details.get("timed") is False:
            return "untimed"
        return "invalid"


class AttemptScore(models.Model):
    """The attempt's aggregate over its valid entries, kept current as entries arrive."""

    attempt = models.OneToOneField("trials.Attempt", on_delete=models.CASCADE, related_name="final_score")
    raw = models.FloatField(null=True, blank=True)
    normalised = models.FloatField(null=True, blank=True)
    valid_entries = models.PositiveIntegerField(default=0)
    is_final = models.BooleanField(default=False, help_text="Set once the end-of-attempt scoring run is in.")
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"score of attempt {self.attempt_id}: {self.raw}"


class ModelCall(models.Model):
    """One request the expert's shell made to the environment's model, charged to the attempt's budget.

    Reserved at its worst case before it is sent (under the attempt's row lock) and settled with
    what the model reports it used; a call never settled (the server died mid-call) stays charged
    at its worst case.
    """

    attempt = models.ForeignKey("trials.Attempt", on_delete=models.CASCADE, related_name="model_calls")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    reserved_tokens = models.PositiveIntegerField()
    reserved_cost = models.FloatField()
    tokens = models.PositiveIntegerField(null=True, blank=True)
    cost = models.FloatField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"model call {self.pk} of attempt {self.attempt_id}"

    @property
    def spent_tokens(self) -> int:
        return self.reserved_tokens if self.tokens is None else self.tokens

    @property
    def spent_cost(self) -> float:
        return self.reserved_cost if self.cost is None else self.cost
