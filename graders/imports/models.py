"""An uploaded file of runs (Inspect eval log, METR runs JSONL, our own JSONL/CSV) and how its import went."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RunImport(models.Model):
    class Kind(models.TextChoices):
        AUTO = "auto", "detect from the file"
        INSPECT = "inspect", "Inspect eval log (.eval, .json)"
        METR_RUNS = "metr_runs", "METR runs JSONL"
        FILE = "file", "run-import file (JSONL or CSV)"

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        VALIDATING = "validating", "reading and checking"
        WRITING = "writing", "writing"
        DONE = "done", "done"
        FAILED = "failed", "refused"

    file = models.FileField(upload_to="run_imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    size_bytes = models.PositiveBigIntegerField(default=0)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.AUTO)
    # The configuration of rows that don't name one (METR runs are `full` by definition).
    configuration = models.SlugField(max_length=60, default="full")
    detected_kind = models.CharField(max_length=20, choices=Kind.choices, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0, help_text="Runs (or lines) in the file, once counted.")
    processed = models.PositiveIntegerField(default=0, help_text="Runs read and checked so far.")
    runs_created = models.PositiveIntegerField(default=0)
    runs_updated = models.PositiveIntegerField(default=0)
    entries_written = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    error_line = models.PositiveIntegerField(
        null=True, blank=True, help_text="Line of the file (sample number for Inspect logs) that was refused."
    )
    error_field = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="run_imports"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"import {self.pk} of {self.original_name} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return int(100 * self.processed / self.total) if self.total else 0
