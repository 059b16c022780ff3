from django.contrib import admin

from environments.models import Environment


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "gpus_min", "gpus_max", "time_limit", "direction", "source", "is_active"]
    list_filter = ["source", "is_active", "direction"]
    search_fields = ["slug", "title"]
