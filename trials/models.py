"""Who works where and when: workstations, reservations, attempts, pauses and notes."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

if TYPE_CHECKING:
    from environments.models import Environment, EnvironmentConfiguration
from django.utils import timezone

from trials import clock


def _when(moment: datetime | None) -> str:
    """A row's time in its title, in the site's time zone ("not saved yet" before auto_now_add sets it)."""
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}" if moment else "not saved yet"


class Workstation(models.Model):
    class Backend(models.TextChoices):
        LOCAL = "local", "local PTY"
        SSH = "ssh", "SSH"

    class Status(models.TextChoices):
        ACTIVE = "active", "active"
        DRAINING = "draining", "draining"
        OFFLINE = "offline", "offline"

    name = models.SlugField(max_length=60, unique=True)
    host = models.CharField(max_length=255)
    ssh_port = models.PositiveIntegerField(
        "SSH port", default=22, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    ssh_user = models.CharField("SSH user", max_length=60, blank=True)
    gpu_count = models.PositiveSmallIntegerField("GPU count", default=0)
    gpu_model = models.CharField("GPU model", max_length=60, blank=True)
    queue_name = models.CharField(max_length=100, unique=True, help_text="Celery queue of this workstation's worker.")
    backend = models.CharField(max_length=10, choices=Backend.choices, default=Backend.SSH)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE, help_text="Set by admins.")
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The workstation's own answer, with each heartbeat, to "can you sandbox attempts?": why not, or [].
    sandbox_problems = models.JSONField(default=list, blank=True)
    sandbox_checked_at = models.DateTimeField(null=True, blank=True)
    # Where the workspaces are, as the last heartbeat measured it (None: not reported yet).
    disk_free_bytes = models.BigIntegerField("disk free (bytes)", null=True, blank=True)
    disk_total_bytes = models.BigIntegerField("disk size (bytes)", null=True, blank=True)
    # What the last heartbeat couldn't report, and why ("nvidia-smi not found: …").
    inventory_notes = models.JSONField(default=list, blank=True)
    # The workstation agent's token (workstation.agent.site): only its SHA-256. Empty: none issued, or
    # revoked; the agent's calls are then refused.
    agent_token_hash = models.CharField(max_length=64, blank=True, editable=False)
    agent_token_issued_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def effective_status(self, now: datetime | None = None) -> str:
        """The admin's status, except that a silent workstation is offline whatever it says."""
        if self.status != self.Status.ACTIVE:
            return self.status
        now = now or timezone.now()
        if self.last_heartbeat_at is None or now - self.last_heartbeat_at > settings.WORKSTATION_OFFLINE_AFTER:
            return self.Status.OFFLINE
        return self.Status.ACTIVE

    def booking_refusal(self, now: datetime | None = None) -> str | None:
        """Why nobody can book it now: not active or silent, or it can't sandbox attempts (unless the
        admin allowed running without: SANDBOX_ALLOW_UNSAFE). None: it takes bookings."""
        status = self.effective_status(now)
        if status != self.Status.ACTIVE:
            return str(status)
        if self.sandbox_problems and not settings.SANDBOX_ALLOW_UNSAFE:
            return "can't sandbox"
        return None

    def is_bookable(self, now: datetime | None = None) -> bool:
        return self.booking_refusal(now) is None

    @property
    def control_queue(self) -> str | None:
        """Where tasks that steer this workstation's sandboxes and terminals run: on it (local), or on the
        web host that holds the SSH key (ssh; None is the default queue)."""
        return self.queue_name if self.backend == self.Backend.LOCAL else None


class Gpu(models.Model):
    """One GPU of a workstation: what reservations hold. A workstation has one per index below its
    `gpu_count`; the heartbeat fills in what the host reports of it."""

    workstation = models.ForeignKey(Workstation, on_delete=models.CASCADE, related_name="gpus")
    index = models.PositiveSmallIntegerField()
    model = models.CharField(max_length=60, blank=True)
    uuid = models.CharField("UUID", max_length=64, blank=True)
    memory_mb = models.PositiveIntegerField("memory (MiB)", null=True, blank=True)
    temperature_c = models.SmallIntegerField("temperature (°C)", null=True, blank=True)
    ecc_errors = models.PositiveIntegerField("uncorrected ECC errors", null=True, blank=True)
    # Processes on it that belong to no attempt (pid, user, command), as the last heartbeat saw them.
    foreign_processes = models.JSONField(default=list, blank=True)
    # Why it can't be booked ("ECC errors", "missing", an admin's word), or "" when it can.
    problem = models.CharField(max_length=200, blank=True)
    # An admin's problem stays until an admin clears it; the heartbeat sets and clears only its own.
    problem_set_by_admin = models.BooleanField(default=False)
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["workstation", "index"]
        constraints = [models.UniqueConstraint(fields=["workstation", "index"], name="gpu_unique_index")]

    def __str__(self) -> str:
        return f"{self.workstation_id}:{self.index}"


class Reservation(models.Model):
    """A booked slot on one workstation for one environment, holding some of its GPUs.

    A reservation holds the GPUs in `gpus` (indices on its workstation) for its time; one that
    holds none holds the whole workstation (an environment that needs no GPU gets the whole host's
    share, as the sandbox policy gives it). No GPU is held by two live reservations at once, and no
    expert holds two overlapping ones: the booking service checks under the workstation's row lock,
    and on PostgreSQL exclusion constraints (migrations 0002 and 0013) back it up.
    """

    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reservations")
    workstation = models.ForeignKey(Workstation, on_delete=models.PROTECT, related_name="reservations")
    environment = models.ForeignKey("environments.Environment", on_delete=models.PROTECT, related_name="reservations")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reservations_created"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # The workstation's GPUs (indices, ascending) this slot holds: the only ones its attempt's
    # sandbox sees. Empty: it holds the whole workstation.
    gpus = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="reservation_ends_after_start"
            ),
        ]
        indexes = [models.Index(fields=["workstation", "starts_at"]), models.Index(fields=["expert", "starts_at"])]

    def __str__(self) -> str:
        # Titles in the admin and in messages: who, what, where, when (the admin selects the related rows).
        return f"{self.expert} · {self.environment} on {self.workstation}, {self.starts_at:%Y-%m-%d %H:%M}"

    @property
    def holds_whole_host(self) -> bool:
        return not self.gpus

    def holds_gpu(self, index: int) -> bool:
        """Whether it holds GPU `index` of its workstation (a slot of the whole host holds them all)."""
        return self.holds_whole_host or index in self.gpus

    @property
    def gpus_label(self) -> str:
        """What it holds, for pages: "whole host", "GPU 3" or "GPUs 0, 1"."""
        if not self.gpus:
            return "whole host"
        return f"GPU{'s' if len(self.gpus) > 1 else ''} {', '.join(str(i) for i in self.gpus)}"

    def state(self, now: datetime | None = None) -> str:
        now = now or timezone.now()
        if self.cancelled_at:
            return "cancelled"
        if now < self.starts_at:
            return "upcoming"
        if now < self.ends_at:
            return "open"
        return "past"


class Attempt(models.Model):
    """One run at an environment, by an expert (human) or an agent; local, or entered by a harness or an import."""

    class ParticipantKind(models.TextChoices):
        HUMAN = "human", "human"
        AGENT = "agent", "agent"

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        ENDED = "ended", "ended"

    class EndReason(models.TextChoices):
        SUBMITTED = "submitted", "submitted by the participant"
        DEADLINE = "deadline", "time limit reached"
        RESERVATION_END = "reservation_end", "reservation ended"
        ADMIN = "admin", "ended by an admin"
        HARNESS = "harness", "finished by the agent harness"
        IMPORTED = "imported", "imported as finished"

    class Exclusion(models.TextChoices):
        TECHNICAL = "technical", "technical failure"
        RULE_BREACH = "rule_breach", "rule breach"
        TEST_RUN = "test_run", "test run"
        OTHER = "other", "other"

    class Source(models.TextChoices):
        LOCAL = "local", "this site"
        API = "api", "harness API"
        INSPECT = "inspect", "Inspect eval log"
        METR_RUNS = "metr_runs", "METR runs JSONL"
        FILE = "file", "run-import file"

    participant_kind = models.CharField(max_length=10, choices=ParticipantKind.choices, default=ParticipantKind.HUMAN)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="attempts", null=True, blank=True
    )
    reservation = models.OneToOneField(
        Reservation, on_delete=models.PROTECT, related_name="attempt", null=True, blank=True
    )
    environment = models.ForeignKey("environments.Environment", on_delete=models.PROTECT, related_name="attempts")
    workstation = models.ForeignKey(
        Workstation, on_delete=models.PROTECT, related_name="attempts", null=True, blank=True
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    time_limit = models.DurationField()
    hard_stop_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Wall-clock end of the slot: the attempt ends here even if paused time remains.",
    )
    started_at = models.DateTimeField(help_text="When the participant started it (for this site's attempts, Start).")
    # When the workstation finished copying the starting solution in (or the package's start step):
    # until then the page says the workspace is being prepared instead of showing a bare shell.
    workspace_ready_at = models.DateTimeField(null=True, blank=True)
    # This site's attempts are "preparing" from the start until the workspace is ready and the starting
    # solution scored (RE-Bench's agents got a ready environment): only then does the clock start, and
    # every measure of time (elapsed, remaining, the deadline, the time limit) counts from here. Null
    # while preparing. A harness's or an import's run counts from started_at (see clock_start).
    clock_started_at = models.DateTimeField(
        null=True, blank=True, help_text="When the clock started: the environment ready, its starting solution scored."
    )
    # Why the last preparation failed (the workspace could not be set up, the starting solution could not
    # be scored); empty when it didn't. The clock stays stopped and the expert or an admin retries.
    preparation_error = models.TextField(blank=True)
    preparation_failed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # --- agent runs and imported runs ---
    participant_label = models.CharField(
        max_length=200, blank=True, help_text="Display name of an imported human or agent; blank for local experts."
    )
    agent_name = models.CharField(max_length=200, blank=True)
    agent_model = models.CharField(max_length=200, blank=True)
    agent_scaffold = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.LOCAL)
    external_id = models.CharField(max_length=255, blank=True, help_text="The run's id in its source.")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        related_name="submitted_runs",
        null=True,
        blank=True,
        help_text="The harness or admin that created this run through the API or an import.",
    )
    # --- provenance: what the run was scored with, fixed when it starts (or is imported) ---
    configuration = models.ForeignKey(
        "environments.EnvironmentConfiguration",
        on_delete=models.PROTECT,
        related_name="attempts",
        null=True,
        blank=True,
        help_text="The scale the run was scored at; its scores are normalised with this configuration's constants.",
    )
    package_version = models.CharField(max_length=60, blank=True, help_text="The environment package's version.")
    scorer_digest = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the scorer at the start.")
    # --- what counts: an admin leaves a run out of every leaderboard, saying why ---
    excluded_reason = models.CharField(max_length=20, choices=Exclusion.choices, blank=True)
    excluded_note = models.CharField(max_length=500, blank=True)
    excluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, related_name="+", null=True, blank=True
    )
    excluded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            # The same run entered twice is one run: importers and the API update it by this key.
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~models.Q(external_id=""),
                name="attempt_unique_external_id_per_source",
            ),
            models.CheckConstraint(
                condition=models.Q(status="running", ended_at__isnull=True)
                | models.Q(status="ended", ended_at__isnull=False),
                name="attempt_ended_iff_ended_at",
            ),
        ]
        indexes = [models.Index(fields=["status"]), models.Index(fields=["participant_kind", "environment"])]

    def __str__(self) -> str:
        return f"attempt {self.pk} at {self.environment_id}"

    @property
    def participant_name(self) -> str:
        """Who ran it, for tables: the expert's username, else the imported label or the agent."""
        if not self.participant_label and self.user is not None:
            return self.user.username
        return self.participant_label or self.agent_name or self.participant_kind

    @property
    def scale(self) -> EnvironmentConfiguration | Environment:
        """What its scores are normalised with: its configuration (an EnvironmentConfiguration).

        A row written without one (test data, a raw ORM insert) falls back to the environment's
        active constants; every service that creates a run sets the configuration.
        """
        return self.configuration if self.configuration is not None else self.environment

    @property
    def is_local(self) -> bool:
        """Run on this site's workstations, on this site's clock (not entered by a harness or an import)."""
        return self.source == self.Source.LOCAL

    @property
    def is_running(self) -> bool:
        return self.status == self.Status.RUNNING

    def spans(self) -> list[clock.Span]:
        """Pause spans; uses the prefetched `pauses` when there are any."""
        return [clock.Span(p.started_at, p.ended_at) for p in self.pauses.all()]

    def open_pause(self) -> Pause | None:
        return next((p for p in self.pauses.all() if p.ended_at is None), None)

    @property
    def clock_start(self) -> datetime | None:
        """Where its counted time begins: the clock's start for this site's attempts (None while it is
        being prepared), the run's start for a harness's or an import's run (its clock was theirs)."""
        return self.clock_started_at if self.is_local else self.started_at

    @property
    def is_preparing(self) -> bool:
        """Started on this site and running, its clock not started yet: the environment is being prepared."""
        return self.is_local and self.is_running and self.clock_started_at is None

    def elapsed(self, now: datetime | None = None) -> timedelta:
        start = self.clock_start
        if start is None:
            return timedelta(0)
        return clock.elapsed(start, self.spans(), now or timezone.now(), self.ended_at)

    def deadline(self) -> datetime | None:
        """When the server will end this attempt: the clock's deadline or the hard stop, whichever is first.

        While it is being prepared only the slot's hard stop holds: the clock has not started.
        """
        start = self.clock_start
        clock_deadline = clock.deadline(start, self.time_limit, self.spans()) if start is not None else None
        candidates = [d for d in (clock_deadline, self.hard_stop_at) if d is not None]
        return min(candidates) if candidates else None


class Pause(models.Model):
    class Reason(models.TextChoices):
        BREAK = "break", "break"
        SCORING = "scoring", "scoring"
        TECHNICAL = "technical", "technical problem"
        ADMIN = "admin", "admin"

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="pauses")
    reason = models.CharField(max_length=10, choices=Reason.choices)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["attempt"], condition=models.Q(ended_at__isnull=True), name="one_open_pause_per_attempt"
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True) | models.Q(ended_at__gt=models.F("started_at")),
                name="pause_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        until = f" to {_when(self.ended_at)}" if self.ended_at else " (open)"
        return f"{self.get_reason_display()} pause of attempt {self.attempt_id}, {_when(self.started_at)}{until}"


class Note(models.Model):
    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    elapsed_seconds = models.FloatField(help_text="Working time on the attempt clock when the note was written.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        # Who wrote it reads its author (the admin selects it with the note).
        author = self.author.username if self.author_id else "nobody yet"
        return f"note by {author} on attempt {self.attempt_id}, {_when(self.created_at)}"


# --- terminal ------------------------------------------------------------------------


class TerminalSession(models.Model):
    """Terminal `number` of an attempt: one PTY holder on the workstation, recorded to one .cast file."""

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="terminal_sessions")
    number = models.PositiveSmallIntegerField()
    backend = models.CharField(max_length=10, choices=Workstation.Backend.choices)
    tmux_session = models.CharField(max_length=100)
    recording_name = models.CharField(max_length=255, help_text="Storage name of the asciicast v2 recording.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_connected_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["attempt", "number"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "number"], name="one_terminal_per_attempt_number"),
        ]

    def __str__(self) -> str:
        return f"terminal {self.number} of attempt {self.attempt_id}, opened {_when(self.created_at)}"


class AttemptToken(models.Model):
    """A secret the `task` command in the shell authenticates with; only its SHA-256 is stored."""

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        # Never the hash: which attempt and when are enough to tell tokens apart.
        return f"token of attempt {self.attempt_id}, made {_when(self.created_at)}"

    @staticmethod
    def hash_of(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class SSHKey(models.Model):
    """A public key an expert logs in to their running attempts with over SSH.

    An account's key (attempt empty) opens every running attempt of its owner; a short-lived key
    (made by the site for one attempt, its private half shown once and never stored) opens only that
    attempt, and only while it runs.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ssh_keys")
    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, null=True, blank=True, related_name="ssh_keys")
    name = models.CharField(max_length=100)
    # "<type> <base64>": the comment is dropped, options never stored (only the workstation sets them).
    public_key = models.TextField()
    fingerprint = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "fingerprint"], name="one_ssh_key_per_user_fingerprint"),
        ]

    def __str__(self) -> str:
        return f"SSH key {self.name!r} of {self.user}, {self.fingerprint}"
