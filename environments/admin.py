from django.contrib import admin

from environments.models import Environment, TaskFamily, TaskStandardTask


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "gpus_min", "gpus_max", "time_limit", "direction", "source", "is_active"]
    list_filter = ["source", "is_active", "direction"]
    search_fields = ["slug", "title"]


@admin.register(TaskFamily)
class TaskFamilyAdmin(admin.ModelAdmin):
    """Read-mostly: families are registered by path (manage.py register_task_family or /environments/task-families/)."""

    list_display = ["name", "standard_version", "path", "registered_at"]
    readonly_fields = ["manifest", "required_environment_variables"]


@admin.register(TaskStandardTask)
class TaskStandardTaskAdmin(admin.ModelAdmin):
    list_display = ["family", "task_name", "environment", "scoring"]
