from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from environments.models import Environment, EnvironmentConfiguration, TaskFamily, TaskStandardTask


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin[Environment]):
    list_display = [
        "slug",
        "title",
        "gpus_min",
        "gpus_max",
        "time_limit",
        "attempts_per_expert",
        "direction",
        "source",
        "is_active",
    ]
    list_editable = ["attempts_per_expert"]
    list_filter = ["source", "is_active", "direction", "scores_visible", "scores_released"]
    search_fields = ["slug", "title"]


@admin.register(EnvironmentConfiguration)
class EnvironmentConfigurationAdmin(admin.ModelAdmin[EnvironmentConfiguration]):
    """Custom configurations for imports; one that runs point at keeps its numbers (a change is a new version)."""

    list_display = ["environment", "name", "version", "starting_score", "reference_score", "measured_with"]
    list_filter = ["name", "environment"]
    search_fields = ["environment__slug", "name"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is not None and obj.attempts.exists():
            return ["environment", "name", "version", "starting_score", "reference_score"]
        return []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or not obj.attempts.exists()


@admin.register(TaskFamily)
class TaskFamilyAdmin(admin.ModelAdmin[TaskFamily]):
    """Read-mostly: families are registered by path (manage.py register_task_family or /environments/task-families/)."""

    list_display = ["name", "standard_version", "path", "registered_at"]
    readonly_fields = ["manifest", "required_environment_variables"]


@admin.register(TaskStandardTask)
class TaskStandardTaskAdmin(admin.ModelAdmin[TaskStandardTask]):
    list_display = ["family", "task_name", "environment", "scoring"]
