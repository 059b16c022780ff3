"""The audit log: every admin action that changes a number or a clock, with who, when and before → after.

At the bottom of the apps (it imports none of them): trials, graders and review write to it from
their services, in the transaction of the change itself, so a change and its record land together.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept as written: the record outlives a renamed or deleted account.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=50, db_index=True)
    subject = models.CharField(max_length=200, help_text='What changed, e.g. "attempt 12", "scoring job 3f2a…".')
    # The attempt it concerns, if any: a plain id, not a foreign key (the log sits below the trials app).
    attempt_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or 'system'} {self.action} {self.subject}"
