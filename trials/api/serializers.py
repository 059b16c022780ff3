"""Serializers of the trials API: what it answers (output), and the shape of what it is sent (input)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from environments.models import Environment
from rebench_site.params import MAX_ID
from trials import selectors
from trials.api.fields import AwareDateTimeField, VisibleReservationField, WorkstationRefField
from trials.models import Attempt, Note, Pause, Reservation, Workstation

# --- serializers: output -----------------------------------------------------------------------


class UserRefSerializer(serializers.Serializer[User]):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)


class WorkstationRefSerializer(serializers.Serializer[Workstation]):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class ReservationSerializer(serializers.ModelSerializer[Reservation]):
    expert = UserRefSerializer(read_only=True)
    environment: serializers.SlugRelatedField[Environment] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    workstation = WorkstationRefSerializer(read_only=True)
    state = serializers.SerializerMethodField()
    attempt = serializers.SerializerMethodField(help_text="Id of the attempt started in this slot, if any.")
    gpus = serializers.ListField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="The workstation's GPU indices the slot holds (its sandbox sees only these); empty: the whole host.",
    )

    class Meta:
        model = Reservation
        fields = [
            "id",
            "expert",
            "environment",
            "workstation",
            "starts_at",
            "ends_at",
            "cancelled_at",
            "created_at",
            "gpus",
            "state",
            "attempt",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=["upcoming", "open", "past", "cancelled"]))
    def get_state(self, reservation: Reservation) -> str:
        return reservation.state(self.context.get("now"))

    def get_attempt(self, reservation: Reservation) -> int | None:
        attempt = getattr(reservation, "attempt", None)  # the reverse one-to-one raises when there is none
        return attempt.pk if attempt is not None else None


class PauseSerializer(serializers.ModelSerializer[Pause]):
    class Meta:
        model = Pause
        fields = ["id", "reason", "started_at", "ended_at", "note"]
        read_only_fields = fields


class AttemptSerializer(serializers.ModelSerializer[Attempt]):
    """An attempt and its clock. The clock fields come from selectors.attempt_clock, computed once."""

    user = UserRefSerializer(read_only=True, allow_null=True)
    environment: serializers.SlugRelatedField[Environment] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    workstation: serializers.SlugRelatedField[Workstation] = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True
    )
    status = serializers.CharField(read_only=True, help_text="running or ended; `state` also tells paused apart.")
    state = serializers.ChoiceField(choices=["running", "paused", "ended"], source="api_clock.state", read_only=True)
    elapsed_seconds = serializers.FloatField(source="api_clock.elapsed_seconds", read_only=True)
    remaining_seconds = serializers.FloatField(source="api_clock.remaining_seconds", read_only=True, allow_null=True)
    time_limit_seconds = serializers.FloatField(source="api_clock.time_limit_seconds", read_only=True)
    deadline = serializers.DateTimeField(source="api_clock.deadline", read_only=True, allow_null=True)
    # Plain strings with the values in their help (here and in `status`, `effective_status`): as enums they
    # would repeat choice sets already named elsewhere, which drf-spectacular warns about.
    pause_reason = serializers.CharField(
        source="api_clock.pause_reason",
        read_only=True,
        allow_null=True,
        help_text="While paused: break, scoring, technical or admin; else null.",
    )
    server_now = serializers.DateTimeField(source="api_clock.server_now", read_only=True)
    clock_started_at = serializers.DateTimeField(
        source="api_clock.clock_started_at",
        read_only=True,
        allow_null=True,
        help_text="When the clock started (the environment ready, its starting solution scored); null while "
        "it is prepared. Elapsed time, the deadline and the time limit count from here.",
    )
    preparing = serializers.SerializerMethodField(
        help_text="While the environment is prepared, the step: workspace, scoring (the starting solution) or "
        "failed (see preparation_error; the clock has not started); empty once the clock runs."
    )
    pauses = PauseSerializer(many=True, read_only=True)
    # Declared: a read-only field from the model loses its blank choice, and a running attempt's is "".
    end_reason = serializers.ChoiceField(
        choices=Attempt.EndReason.choices,
        allow_blank=True,
        read_only=True,
        help_text="Why it ended; empty while running.",
    )

    class Meta:
        model = Attempt
        fields = [
            "id",
            "user",
            "participant_kind",
            "reservation",
            "environment",
            "workstation",
            "status",
            "end_reason",
            "started_at",
            "ended_at",
            "hard_stop_at",
            "state",
            "elapsed_seconds",
            "remaining_seconds",
            "time_limit_seconds",
            "deadline",
            "pause_reason",
            "pauses",
            "server_now",
            "clock_started_at",
            "preparing",
            "preparation_error",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Attempt) -> dict[str, Any]:
        instance.api_clock = selectors.attempt_clock(instance, self.context.get("now"))  # type: ignore[attr-defined]  # the clock fields' source
        return super().to_representation(instance)

    def get_preparing(self, attempt: Attempt) -> str:
        return selectors.attempt_preparing(attempt)


class NoteSerializer(serializers.ModelSerializer[Note]):
    author = UserRefSerializer(read_only=True)

    class Meta:
        model = Note
        fields = ["id", "author", "body", "elapsed_seconds", "created_at"]
        read_only_fields = fields


class WorkstationSerializer(serializers.ModelSerializer[Workstation]):
    effective_status = serializers.SerializerMethodField(
        help_text="active, draining or offline: the admin's status, except that a silent workstation is offline."
    )

    class Meta:
        model = Workstation
        fields = [
            "id",
            "name",
            "host",
            "ssh_port",
            "ssh_user",
            "gpu_count",
            "gpu_model",
            "queue_name",
            "backend",
            "status",
            "effective_status",
            "last_heartbeat_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_effective_status(self, workstation: Workstation) -> str:
        return workstation.effective_status(self.context.get("now"))


# --- serializers: input (shape only; the services decide) --------------------------------------


class ReservationFilterSerializer(serializers.Serializer[None]):
    expert = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)


class ReservationCreateSerializer(serializers.Serializer[None]):
    environment = serializers.SlugRelatedField(slug_field="slug", queryset=Environment.objects.all())
    workstation = WorkstationRefField()
    starts_at = AwareDateTimeField()
    ends_at = AwareDateTimeField(required=False, help_text="Defaults to the shortest slot: time limit plus set-up.")
    expert = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), required=False, help_text="Admins only: book for this expert."
    )
    gpu_count = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=32767,
        help_text="Admins only: hold this many GPUs, between the environment's minimum and maximum "
        "(default: its minimum).",
    )


class AttemptStartSerializer(serializers.Serializer[None]):
    reservation = VisibleReservationField()


class AttemptPauseSerializer(serializers.Serializer[None]):
    # `scoring` pauses are the system's, so no user may ask for one.
    reason = serializers.ChoiceField(
        choices=[Pause.Reason.BREAK, Pause.Reason.TECHNICAL, Pause.Reason.ADMIN],
        default=Pause.Reason.BREAK,
        help_text="Experts pause for a break; admins may also pause for technical or admin reasons.",
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class AttemptAddPauseSerializer(serializers.Serializer[None]):
    started_at = AwareDateTimeField()
    ended_at = AwareDateTimeField()
    reason = serializers.ChoiceField(
        choices=[Pause.Reason.TECHNICAL, Pause.Reason.ADMIN], default=Pause.Reason.TECHNICAL
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class NoteCreateSerializer(serializers.Serializer[None]):
    body = serializers.CharField()


class WorkstationCreateSerializer(serializers.Serializer[None]):
    name = serializers.SlugField(max_length=60)
    host = serializers.CharField(max_length=255)
    gpu_count = serializers.IntegerField(min_value=0, max_value=32767)
    gpu_model = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")
    queue_name = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default="", help_text="Defaults to ws.<name>."
    )
    backend = serializers.ChoiceField(choices=Workstation.Backend.choices, default=Workstation.Backend.SSH)
    ssh_port = serializers.IntegerField(min_value=1, max_value=65535, default=22)
    ssh_user = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")


class WorkstationUpdateSerializer(serializers.ModelSerializer[Workstation]):
    class Meta:
        model = Workstation
        fields = ["name", "host", "ssh_port", "ssh_user", "gpu_count", "gpu_model", "queue_name", "backend", "status"]
        extra_kwargs = {"ssh_port": {"min_value": 1, "max_value": 65535}}
