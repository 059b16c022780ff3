from django.contrib import admin

from trials.models import Attempt, Note, Pause, Reservation, Workstation


@admin.register(Workstation)
class WorkstationAdmin(admin.ModelAdmin):
    list_display = ["name", "host", "gpu_count", "gpu_model", "backend", "status", "last_heartbeat_at", "queue_name"]
    list_filter = ["status", "backend"]
    search_fields = ["name", "host"]
    actions = ["drain", "activate"]

    @admin.action(description="Drain: take no new bookings")
    def drain(self, request, queryset):  # type: ignore[no-untyped-def]
        queryset.update(status=Workstation.Status.DRAINING)

    @admin.action(description="Activate")
    def activate(self, request, queryset):  # type: ignore[no-untyped-def]
        queryset.update(status=Workstation.Status.ACTIVE)


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = ["id", "expert", "environment", "workstation", "starts_at", "ends_at", "cancelled_at"]
    list_filter = ["workstation", "environment"]
    list_select_related = ["expert", "environment", "workstation"]
    raw_id_fields = ["expert", "created_by"]


class PauseInline(admin.TabularInline):
    model = Pause
    extra = 0


class NoteInline(admin.TabularInline):
    model = Note
    extra = 0


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = ["id", "participant_kind", "user", "environment", "status", "started_at", "ended_at", "end_reason"]
    list_filter = ["status", "participant_kind", "environment"]
    inlines = [PauseInline, NoteInline]
    raw_id_fields = ["user", "reservation"]
