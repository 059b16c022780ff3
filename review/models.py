"""Review data: completions to label, queues over them, slots with leases, labels and imports."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class LabelValue(models.TextChoices):
    INJURIOUS = "injurious", "Injurious"
    SAFE = "safe", "Safe"
    UNSURE = "unsure", "Unsure"


class Completion(models.Model):
    """A prompt and the text a generator (or a red-teamer) wrote after it."""

    class Source(models.TextChoices):
        IN_DISTRIBUTION = "in_distribution", "In distribution"
        ADVERSARIAL = "adversarial", "Adversarial"
        AGENT_TRANSCRIPT = "agent_transcript", "Agent transcript"
        RED_TEAM = "red_team", "Red-team rewrite"
        OTHER = "other", "Other"

    prompt = models.TextField()
    text = models.TextField()
    source = models.CharField(max_length=32, choices=Source.choices, default=Source.IN_DISTRIBUTION)
    batch = models.CharField(max_length=200, blank=True, default="")
    # An id from the file it was imported from, so labels can be joined back to the generator's data.
    external_id = models.CharField(max_length=200, blank=True, default="")
    # Known label for gold items (mixed into queues to measure reviewer accuracy); empty otherwise.
    gold_label = models.CharField(max_length=16, choices=LabelValue.choices, blank=True, default="")
    # The completion a red-team rewrite started from.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rewrites")
    # Written by the classifier's rescoring job; null until scored.
    classifier_score = models.FloatField(null=True, blank=True)
    classifier_scored_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["source", "batch"], name="review_completion_src_batch"),
            models.Index(fields=["classifier_score"], name="review_completion_score"),
        ]

    def __str__(self) -> str:
        return f"completion {self.pk} ({self.source})"


DEFAULT_MIN_SECONDS_PER_ITEM = 3.0


class ReviewQueue(models.Model):
    """A set of completions to label under one policy, with N labels wanted per item."""

    class Policy(models.TextChoices):
        RANDOM = "random", "Random sample"
        UNCERTAIN = "uncertain", "Most uncertain first"
        VERIFY = "verify", "Adversarial submissions to verify"
        ADJUDICATE = "adjudicate", "Disagreements to adjudicate"

    name = models.CharField(max_length=200)
    policy = models.CharField(max_length=16, choices=Policy.choices, default=Policy.RANDOM)
    overlap = models.PositiveSmallIntegerField(default=1)
    lease_seconds = models.PositiveIntegerField(default=300)
    # Everyone with the reviewer role, or only the users listed in `reviewers`.
    all_reviewers = models.BooleanField(default=True)
    reviewers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="review_queues")
    gold_rate = models.FloatField(default=0.0)
    # Labels given in less time on the item than this are flagged as too fast (not refused: a
    # glaring item can be judged at a glance; many in a row is what the flag is for).
    min_seconds_per_item = models.FloatField(default=DEFAULT_MIN_SECONDS_PER_ITEM)
    guideline = models.TextField(blank=True, default="")
    # The selection the queue was built from (empty: any).
    source_filter = models.CharField(max_length=32, blank=True, default="")
    batch_filter = models.CharField(max_length=200, blank=True, default="")
    # The threshold the uncertainty sort keys were computed against.
    threshold = models.FloatField(null=True, blank=True)
    # For adjudication queues: the queue whose disagreements flow in here.
    adjudicates = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="adjudication_queues"
    )
    is_open = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_blind(self) -> bool:
        return self.policy != self.Policy.ADJUDICATE


class QueueItem(models.Model):
    """One completion in one queue; its `overlap` slots are what reviewers lease."""

    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="items")
    completion = models.ForeignKey(Completion, on_delete=models.CASCADE, related_name="queue_items")
    is_gold = models.BooleanField(default=False)
    # Position under the queue's policy (lower first), fixed when the item is added.
    sort_key = models.FloatField()
    label_count = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sort_key", "id"]
        constraints = [models.UniqueConstraint(fields=["queue", "completion"], name="review_item_once_per_queue")]

    def __str__(self) -> str:
        # The queue's name: the admin selects the queue with the item.
        queue = self.queue.name if self.queue_id else "no queue"
        return f"completion {self.completion_id} in {queue} (item {self.pk})"


class Slot(models.Model):
    """One wanted label of an item. Free when it has no label and no unexpired lease."""

    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="slots")
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="slots")
    index = models.PositiveSmallIntegerField()
    # Copied from the item so the pick reads one index in policy order.
    sort_key = models.FloatField()
    filled = models.BooleanField(default=False)
    # The current lease; an expired one counts as free, so nothing has to sweep them.
    lease = models.ForeignKey("Assignment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "index"], name="review_slot_index_once")]
        indexes = [
            # Serves the pick: unfilled slots of one queue in policy order.
            models.Index(fields=["queue", "sort_key", "id"], name="review_slot_pick", condition=models.Q(filled=False)),
        ]

    def __str__(self) -> str:
        state = "filled" if self.filled else "open"
        return f"slot {self.index} of item {self.item_id} ({state})"


class Assignment(models.Model):
    """A reviewer's lease on a slot; one per reviewer and item ever, so no one sees an item twice."""

    class State(models.TextChoices):
        LEASED = "leased", "Leased"
        LABELED = "labeled", "Labeled"
        SKIPPED = "skipped", "Skipped"

    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="assignments")
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="assignments")
    slot = models.ForeignKey(Slot, on_delete=models.CASCADE, related_name="assignments")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_assignments")
    state = models.CharField(max_length=16, choices=State.choices, default=State.LEASED)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "reviewer"], name="review_item_seen_once")]
        indexes = [models.Index(fields=["reviewer", "queue", "state"], name="review_assign_reviewer")]

    def __str__(self) -> str:
        # Whose: the admin selects the reviewer with the lease.
        when = f"{timezone.localtime(self.leased_at):%Y-%m-%d %H:%M}" if self.leased_at else "not leased yet"
        reviewer = self.reviewer.username if self.reviewer_id else "nobody"
        return f"{reviewer}'s lease on item {self.item_id} ({self.get_state_display()}), {when}"


class Label(models.Model):
    """A reviewer's judgement of one queue item."""

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="label")
    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="labels")
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="labels")
    completion = models.ForeignKey(Completion, on_delete=models.CASCADE, related_name="labels")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_labels")
    value = models.CharField(max_length=16, choices=LabelValue.choices)
    note = models.TextField(blank=True, default="")
    seconds_spent = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when the reviewer changes the label from their history; each change is a LabelRevision.
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["queue", "reviewer"], name="review_label_queue_reviewer"),
            models.Index(fields=["reviewer", "created_at"], name="review_label_reviewer_time"),
        ]

    def __str__(self) -> str:
        return f"{self.value} on item {self.item_id}"


class LabelRevision(models.Model):
    """One change of a label after it was given: who changed it, when, and the value and note before and after."""

    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="revisions")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    changed_at = models.DateTimeField()
    value_before = models.CharField(max_length=16, choices=LabelValue.choices)
    value_after = models.CharField(max_length=16, choices=LabelValue.choices)
    note_before = models.TextField(blank=True, default="")
    note_after = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["changed_at", "id"]

    def __str__(self) -> str:
        return f"label {self.label_id}: {self.value_before} → {self.value_after}"


class ImportJob(models.Model):
    """An upload of completions (JSONL or CSV), checked whole and written all at once by a Celery job."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Format(models.TextChoices):
        JSONL = "jsonl", "JSONL"
        CSV = "csv", "CSV"

    file = models.FileField(upload_to="review-imports/")
    original_name = models.CharField(max_length=255, blank=True, default="")
    format = models.CharField(max_length=8, choices=Format.choices)
    batch = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    lines_total = models.PositiveIntegerField(default=0)
    lines_done = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        name = self.original_name or self.file.name or "nothing"
        return f"import {self.pk} of {name} ({self.get_status_display()})"

    @property
    def percent(self) -> int:
        if not self.lines_total:
            return 100 if self.status == self.Status.DONE else 0
        return int(100 * self.lines_done / self.lines_total)
