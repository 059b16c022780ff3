"""Run imports in the Django admin: read-only records of what was imported, by whom, and how it went."""

from django.contrib import admin

from graders.imports.models import RunImport


@admin.register(RunImport)
class RunImportAdmin(admin.ModelAdmin[RunImport]):
    list_display = ["id", "original_name", "detected_kind", "status", "runs_created", "runs_updated", "created_at"]
    list_filter = ["status", "detected_kind"]
    readonly_fields = [f.name for f in RunImport._meta.fields]
