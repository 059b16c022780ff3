"""Environments an expert can book: the built-in RE-Bench seven and, later, Task Standard families."""

from __future__ import annotations

import re
from datetime import timedelta

from django.db import models

from environments import registry

# What EnvironmentConfiguration.name takes (a slug), as forms, imports and the leaderboard's ?configuration= check it.
CONFIGURATION_NAME = re.compile(r"[-a-zA-Z0-9_]{1,60}")


def normalised(raw: float, *, start: float, reference: float) -> float:
    """(raw − start) / (reference − start), clipped below at 0; above 1 is allowed."""
    return max(0.0, (raw - start) / (reference - start))


class Environment(models.Model):
    class Direction(models.TextChoices):
        HIGHER = registry.HIGHER, "higher is better"
        LOWER = registry.LOWER, "lower is better"

    class Aggregation(models.TextChoices):
        MIN = registry.AGG_MIN, "min"
        MAX = registry.AGG_MAX, "max"
        LAST = registry.AGG_LAST, "last"

    class Source(models.TextChoices):
        BUILTIN = "builtin", "built-in"
        TASK_STANDARD = "task_standard", "METR Task Standard"

    slug = models.SlugField(max_length=120, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    raw_score = models.CharField(max_length=200, blank=True, help_text="What the raw score measures.")
    direction = models.CharField(max_length=10, choices=Direction.choices)
    aggregation = models.CharField(max_length=10, choices=Aggregation.choices)
    starting_score = models.FloatField()
    reference_score = models.FloatField()
    gpus_min = models.PositiveSmallIntegerField(default=0)
    gpus_max = models.PositiveSmallIntegerField(default=0)
    gpu_model = models.CharField(max_length=60, blank=True)
    cpus = models.PositiveSmallIntegerField(default=0)
    memory_gb = models.PositiveIntegerField(default=0)
    time_limit = models.DurationField(default=timedelta(hours=8))
    scores_visible = models.BooleanField(default=True)
    # A hidden-score environment's scores reach experts (their own ended attempts, "My results", exports)
    # only once an admin releases them: until then a score seen after one attempt is feedback for the next.
    scores_released = models.BooleanField(
        default=False, help_text="Hidden scores: experts see their own ended attempts' scores."
    )
    # The study's rule: a baseline from someone who has seen the task isn't a first attempt. Each booking
    # that is live or was started counts; 0 lifts the limit (pilots, demos).
    attempts_per_expert = models.PositiveSmallIntegerField(
        default=1, help_text="How many attempts one expert may make here (booked or made); 0: no limit."
    )
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.BUILTIN)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=models.Q(gpus_max__gte=models.F("gpus_min")), name="env_gpu_range"),
            models.CheckConstraint(
                condition=~models.Q(starting_score=models.F("reference_score")), name="env_start_ne_reference"
            ),
        ]

    def __str__(self) -> str:
        return self.slug

    @property
    def gpus_label(self) -> str:
        if self.gpus_min == self.gpus_max:
            return str(self.gpus_min)
        return f"{self.gpus_min}–{self.gpus_max}"

    def normalise(self, raw: float) -> float:
        """(raw − start) / (reference − start), clipped below at 0; above 1 is allowed."""
        return normalised(raw, start=self.starting_score, reference=self.reference_score)


class EnvironmentConfiguration(models.Model):
    """One scale of an environment, versioned: the starting and reference raw scores a run is normalised by.

    Every run (attempt, agent run, import) points at the configuration it was scored at, so changing
    the site's active configuration, or re-measuring one (a new version), changes no stored number.
    `small` and `full` come from the environment's package (`environment_sync`); admins may add a
    named custom one for imports. Rows are never edited once a run points at them: a change of
    constants is a new version.
    """

    FULL = "full"
    SMALL = "small"

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="configurations")
    name = models.SlugField(max_length=60, help_text="small, full (RE-Bench's task), or a custom name.")
    version = models.PositiveIntegerField(default=1)
    starting_score = models.FloatField()
    reference_score = models.FloatField()
    measured_with = models.CharField(max_length=500, blank=True, help_text="Where the two scores come from.")
    note = models.CharField(max_length=500, blank=True, help_text="Which published number this is, and why.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["environment__slug", "name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "name", "version"], name="env_configuration_version"),
            models.CheckConstraint(
                condition=~models.Q(starting_score=models.F("reference_score")), name="env_config_start_ne_reference"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.environment_id and self.environment.slug} {self.label}"

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def normalise(self, raw: float) -> float:
        """(raw − start) / (reference − start) with this configuration's constants, clipped below at 0."""
        return normalised(raw, start=self.starting_score, reference=self.reference_score)


class TaskFamily(models.Model):
    """A METR Task Standard family registered by path; each of its tasks is an Environment."""

    name = models.CharField(max_length=120, unique=True)
    path = models.CharField(max_length=500, help_text="The family's directory on the workstations.")
    standard_version = models.CharField(max_length=20, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    required_environment_variables = models.JSONField(default=list, blank=True)
    registered_at = models.DateTimeField(auto_now=True)
    # TaskFamily.install(), run once per version of the family's files on each machine (cached there):
    # the version it last ran for at registration, when, and the end of what it printed.
    installed_version = models.CharField(max_length=64, blank=True)
    installed_at = models.DateTimeField(null=True, blank=True)
    install_output = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "task families"

    def __str__(self) -> str:
        return self.name


class TaskStandardTask(models.Model):
    class Scoring(models.TextChoices):
        SCORE = "score", "scored once, at the end"
        INTERMEDIATE = "intermediate", "intermediate scores, aggregated"

    environment = models.OneToOneField(Environment, on_delete=models.CASCADE, related_name="task_standard")
    family = models.ForeignKey(TaskFamily, on_delete=models.CASCADE, related_name="tasks")
    task_name = models.CharField(max_length=120)
    instructions = models.TextField(blank=True)
    permissions = models.JSONField(default=list, blank=True)
    scoring = models.CharField(max_length=20, choices=Scoring.choices)

    class Meta:
        ordering = ["family", "task_name"]
        constraints = [models.UniqueConstraint(fields=["family", "task_name"], name="one_row_per_family_task")]

    def __str__(self) -> str:
        return f"{self.family.name}/{self.task_name}"
