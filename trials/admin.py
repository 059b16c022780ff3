from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from rebench_site.admin_records import RecordAdmin, RecordInline
from trials.models import Attempt, AttemptToken, Gpu, Note, Pause, Reservation, SSHKey, TerminalSession, Workstation


class GpuInline(admin.TabularInline[Gpu, Workstation]):
    """A workstation's GPUs: what the heartbeat reports is read-only; `problem` takes one out of booking."""

    model = Gpu
    extra = 0
    can_delete = False
    fields = ["index", "model", "memory_mb", "temperature_c", "ecc_errors", "reported_at", "problem"]
    readonly_fields = ["index", "model", "memory_mb", "temperature_c", "ecc_errors", "reported_at"]

    def has_add_permission(self, request: HttpRequest, obj: Workstation | None = None) -> bool:
        return False  # rows follow the workstation's GPU count


@admin.register(Workstation)
class WorkstationAdmin(admin.ModelAdmin[Workstation]):
    inlines = [GpuInline]
    list_display = ["name", "host", "gpu_count", "gpu_model", "backend", "status", "last_heartbeat_at", "queue_name"]
    list_filter = ["status", "backend"]
    search_fields = ["name", "host"]
    actions = ["drain", "activate"]

    @admin.action(description="Drain: take no new bookings")
    def drain(self, request: HttpRequest, queryset: QuerySet[Workstation]) -> None:
        queryset.update(status=Workstation.Status.DRAINING)

    @admin.action(description="Activate")
    def activate(self, request: HttpRequest, queryset: QuerySet[Workstation]) -> None:
        queryset.update(status=Workstation.Status.ACTIVE)


@admin.register(Gpu)
class GpuAdmin(admin.ModelAdmin[Gpu]):
    """Every GPU of the pool with its health; what the heartbeat reports is read-only, `problem` an admin's."""

    list_display = [
        "workstation",
        "index",
        "model",
        "memory_mb",
        "temperature_c",
        "ecc_errors",
        "problem",
        "reported_at",
    ]
    list_filter = ["workstation"]
    list_select_related = ["workstation"]
    readonly_fields = [
        "workstation",
        "index",
        "model",
        "uuid",
        "memory_mb",
        "temperature_c",
        "ecc_errors",
        "foreign_processes",
        "reported_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # rows follow the workstation's GPU count


@admin.register(SSHKey)
class SSHKeyAdmin(admin.ModelAdmin[SSHKey]):
    """Experts' SSH keys (public halves): an admin can see and remove one, not write one for someone."""

    list_display = ["user", "name", "fingerprint", "attempt", "created_at"]
    list_select_related = ["user", "attempt"]
    search_fields = ["user__username", "fingerprint", "name"]
    readonly_fields = ["user", "attempt", "name", "public_key", "fingerprint", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are the expert's to add (the SSH keys page)


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin[Reservation]):
    list_display = ["id", "expert", "environment", "workstation", "starts_at", "ends_at", "cancelled_at"]
    list_filter = ["workstation", "environment"]
    list_select_related = ["expert", "environment", "workstation"]
    raw_id_fields = ["expert", "created_by"]


class PauseInline(admin.TabularInline[Pause, Attempt]):
    model = Pause
    extra = 0
    raw_id_fields = ["created_by"]


class NoteInline(admin.TabularInline[Note, Attempt]):
    model = Note
    extra = 0
    raw_id_fields = ["author"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Note]:
        return super().get_queryset(request).select_related("author")  # each row's title names its author


TERMINAL_SESSION_FIELDS = (
    "number",
    "backend",
    "tmux_session",
    "created_at",
    "last_connected_at",
    "ended_at",
    "end_reason",
)


class TerminalSessionInline(RecordInline[TerminalSession, Attempt]):
    model = TerminalSession
    fields = TERMINAL_SESSION_FIELDS
    readonly_fields = TERMINAL_SESSION_FIELDS


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin[Attempt]):
    list_display = ["id", "participant_kind", "user", "environment", "status", "started_at", "ended_at", "end_reason"]
    list_filter = ["status", "participant_kind", "environment"]
    inlines = [PauseInline, NoteInline, TerminalSessionInline]
    raw_id_fields = ["user", "reservation"]


# Pauses and notes are edited on their attempt's page (above); their own lists are for looking across
# attempts: the clock's pauses are opened and closed by the services, which keep one open at a time.


@admin.register(Pause)
class PauseAdmin(RecordAdmin[Pause]):
    list_display = ["id", "attempt", "expert", "reason", "started_at", "ended_at", "created_by", "note"]
    list_filter = ["reason", "attempt__environment"]
    list_select_related = ["attempt__user", "created_by"]
    search_fields = ["attempt__id__exact", "attempt__user__username", "note"]
    date_hierarchy = "started_at"

    @admin.display(description="expert", ordering="attempt__user__username")
    def expert(self, pause: Pause) -> Any:
        return pause.attempt.user


@admin.register(Note)
class NoteAdmin(RecordAdmin[Note]):
    list_display = ["id", "attempt", "author", "created_at", "elapsed_seconds", "body"]
    list_filter = ["attempt__environment"]
    list_select_related = ["attempt", "author"]
    search_fields = ["attempt__id__exact", "author__username", "body"]
    date_hierarchy = "created_at"


@admin.register(TerminalSession)
class TerminalSessionAdmin(RecordAdmin[TerminalSession]):
    """What holder session name and recording each terminal of an attempt was: written by the terminal's services."""

    list_display = ["id", "attempt", "expert", "number", "backend", "created_at", "last_connected_at", "ended_at"]
    list_filter = ["backend", "attempt__environment"]
    list_select_related = ["attempt__user"]
    search_fields = ["attempt__id__exact", "attempt__user__username", "tmux_session", "recording_name"]
    date_hierarchy = "created_at"

    @admin.display(description="expert", ordering="attempt__user__username")
    def expert(self, session: TerminalSession) -> Any:
        return session.attempt.user


@admin.register(AttemptToken)
class AttemptTokenAdmin(RecordAdmin[AttemptToken]):
    """The `task` command's tokens: which attempt, when made and last used; never the hash.

    Deleting one revokes it (the shell's `task` command stops authenticating); nothing else changes here.
    """

    list_display = ["id", "attempt", "expert", "created_at", "last_used_at"]
    list_select_related = ["attempt__user"]
    search_fields = ["attempt__id__exact", "attempt__user__username"]
    fields = ["attempt", "created_at", "last_used_at"]  # not key_hash: a hash of a secret is no one's business
    deletable = True

    @admin.display(description="expert", ordering="attempt__user__username")
    def expert(self, token: AttemptToken) -> Any:
        return token.attempt.user
