"""The audit log in the Django admin: for reading and searching, never for writing (the services write it)."""

from django.contrib import admin

from audit.models import AuditEvent
from rebench_site.admin_records import RecordAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(RecordAdmin[AuditEvent]):
    list_display = ["at", "actor_name", "action", "subject", "attempt_id", "note"]
    list_filter = ["action"]
    # actor_name, not actor: the name as written survives a renamed or deleted account.
    search_fields = ["actor_name", "action", "subject", "note", "attempt_id__exact"]
    date_hierarchy = "at"
    fields = ["at", "actor", "actor_name", "action", "subject", "attempt_id", "before", "after", "note"]
