"""REST API for trials: reservations, attempts on the server's clock, and (for admins) workstations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from environments.models import Environment
from rebench_site import roles
from rebench_site.params import MAX_ID, id_param
from trials import selectors, services
from trials.models import Attempt, Note, Pause, Reservation, Workstation

User = get_user_model()
AnyUser = AbstractBaseUser | AnonymousUser

EXPERTS_AND_ADMINS = [IsAuthenticated, roles.HasRole.of(roles.EXPERT, roles.ADMIN)]
ADMINS = [IsAuthenticated, roles.HasRole.of(roles.ADMIN)]
# The years a reservation, pause or run may name.
YEARS = (2000, 2200)


# --- fields ------------------------------------------------------------------------------------


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO-8601 date-time with its offset; DRF would read a naive one as server time, silently."""

    default_error_messages = {
        "naive": "Give the time zone too, e.g. 2030-01-31T09:00:00+01:00 or 2030-01-31T08:00Z.",
        "years": f"Give a time between the years {YEARS[0]} and {YEARS[1]}.",
    }

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, datetime) and timezone.is_naive(value):
            self.fail("naive")
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value)
            except ValueError:
                parsed = None  # well-formed but impossible (month 13): the parent's message says what to send
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive")
        parsed_value = super().to_internal_value(value)
        # Times near datetime's ends overflow the moment a length is added to them (a slot's end,
        # a deadline): refused here, where the field can be named.
        if not YEARS[0] <= parsed_value.year <= YEARS[1]:
            self.fail("years")
        return parsed_value


@extend_schema_field(
    {"oneOf": [{"type": "integer"}, {"type": "string"}], "description": "Workstation id, or its name."}
)
class WorkstationRefField(serializers.RelatedField):
    """A workstation by id (a number) or by name (a string); scripts know names, forms know ids."""

    default_error_messages = {
        "does_not_exist": "No workstation {value!r}.",
        "incorrect_type": "Give a workstation id (a number) or name (a string).",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", Workstation.objects.all())
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Workstation:
        # bool is an int in Python; `true` is not a workstation id.
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("incorrect_type")
        queryset = self.get_queryset()
        found = queryset.filter(name=data).first() if isinstance(data, str) else None
        pk = data if isinstance(data, int) else id_param(data)
        if found is None and pk is not None and 1 <= pk <= MAX_ID:
            found = queryset.filter(pk=pk).first()
        if found is None:
            self.fail("does_not_exist", value=data)
        return found

    def to_representation(self, value: Workstation) -> int:
        return value.pk


class VisibleReservationField(serializers.PrimaryKeyRelatedField):
    """A reservation id among those the requesting user may see: others' ids look unknown."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", Reservation.objects.all())
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Reservation]:
        request = self.context.get("request")
        if request is None:
            return Reservation.objects.none()
        return reservations_visible_to(request.user)


# --- querysets ---------------------------------------------------------------------------------


def reservations_visible_to(user: AnyUser) -> QuerySet[Reservation]:
    queryset = Reservation.objects.select_related("expert", "environment", "workstation", "attempt")
    return queryset if roles.is_admin(user) else queryset.filter(expert_id=user.pk)


def attempts_visible_to(user: AnyUser) -> QuerySet[Attempt]:
    return (
        selectors.attempts_visible_to(user)
        .select_related("environment", "workstation", "user")
        .prefetch_related("pauses")
    )


# --- serializers: output -----------------------------------------------------------------------


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)


class WorkstationRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class ReservationSerializer(serializers.ModelSerializer):
    expert = UserRefSerializer(read_only=True)
    environment = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    workstation = WorkstationRefSerializer(read_only=True)
    state = serializers.SerializerMethodField()
    attempt = serializers.SerializerMethodField(help_text="Id of the attempt started in this slot, if any.")

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


class PauseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Pause
        fields = ["id", "reason", "started_at", "ended_at", "note"]
        read_only_fields = fields


class AttemptSerializer(serializers.ModelSerializer):
    """An attempt and its clock. The clock fields come from selectors.attempt_clock, computed once."""

    user = UserRefSerializer(read_only=True, allow_null=True)
    environment = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    workstation = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
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
        ]
        read_only_fields = fields

    def to_representation(self, instance: Attempt) -> dict[str, Any]:
        instance.api_clock = selectors.attempt_clock(instance, self.context.get("now"))  # type: ignore[attr-defined]
        return super().to_representation(instance)


class NoteSerializer(serializers.ModelSerializer):
    author = UserRefSerializer(read_only=True)

    class Meta:
        model = Note
        fields = ["id", "author", "body", "elapsed_seconds", "created_at"]
        read_only_fields = fields


class WorkstationSerializer(serializers.ModelSerializer):
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


class ReservationFilterSerializer(serializers.Serializer):
    expert = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)


class ReservationCreateSerializer(serializers.Serializer):
    environment = serializers.SlugRelatedField(slug_field="slug", queryset=Environment.objects.all())
    workstation = WorkstationRefField()
    starts_at = AwareDateTimeField()
    ends_at = AwareDateTimeField(required=False, help_text="Defaults to the shortest slot: time limit plus set-up.")
    expert = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), required=False, help_text="Admins only: book for this expert."
    )


class AttemptStartSerializer(serializers.Serializer):
    reservation = VisibleReservationField()


class AttemptPauseSerializer(serializers.Serializer):
    # `scoring` pauses are the system's, so no user may ask for one.
    reason = serializers.ChoiceField(
        choices=[Pause.Reason.BREAK, Pause.Reason.TECHNICAL, Pause.Reason.ADMIN],
        default=Pause.Reason.BREAK,
        help_text="Experts pause for a break; admins may also pause for technical or admin reasons.",
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class AttemptAddPauseSerializer(serializers.Serializer):
    started_at = AwareDateTimeField()
    ended_at = AwareDateTimeField()
    reason = serializers.ChoiceField(
        choices=[Pause.Reason.TECHNICAL, Pause.Reason.ADMIN], default=Pause.Reason.TECHNICAL
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class NoteCreateSerializer(serializers.Serializer):
    body = serializers.CharField()


class WorkstationCreateSerializer(serializers.Serializer):
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


class WorkstationUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Workstation
        fields = ["name", "host", "ssh_port", "ssh_user", "gpu_count", "gpu_model", "queue_name", "backend", "status"]
        extra_kwargs = {"ssh_port": {"min_value": 1, "max_value": 65535}}


# --- views -------------------------------------------------------------------------------------


class ClockContextMixin:
    """One `now` per request, so every object in a response is judged at the same moment."""

    request: Request

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()  # type: ignore[misc]
        if not hasattr(self, "_now"):
            self._now = timezone.now()
        context["now"] = self._now
        return context


class ReservationViewSet(ClockContextMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Booked slots: experts see and book their own; admins see everyone's and book for anyone."""

    serializer_class = ReservationSerializer
    permission_classes = EXPERTS_AND_ADMINS

    def get_queryset(self) -> QuerySet[Reservation]:
        if getattr(self, "swagger_fake_view", False):
            return Reservation.objects.none()
        queryset = reservations_visible_to(self.request.user).order_by("-starts_at", "-pk")
        if self.action == "list" and roles.is_admin(self.request.user):
            params = ReservationFilterSerializer(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            if "expert" in params.validated_data:
                queryset = queryset.filter(expert_id=params.validated_data["expert"])
        return queryset

    def _respond(self, reservation: Reservation, code: int = status.HTTP_200_OK) -> Response:
        fresh = reservations_visible_to(self.request.user).get(pk=reservation.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    @extend_schema(parameters=[OpenApiParameter("expert", int, description="Admins only: this expert's reservations.")])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ReservationCreateSerializer, responses={201: ReservationSerializer})
    def create(self, request: Request) -> Response:
        params = ReservationCreateSerializer(data=request.data, context=self.get_serializer_context())
        params.is_valid(raise_exception=True)
        data = params.validated_data
        reservation = services.reservation_create(
            expert=data.get("expert", request.user),
            environment=data["environment"],
            workstation=data["workstation"],
            starts_at=data["starts_at"],
            ends_at=data.get("ends_at"),
            created_by=request.user,
        )
        return self._respond(reservation, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ReservationSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        reservation = services.reservation_cancel(reservation=self.get_object(), by=request.user)
        return self._respond(reservation)


class AttemptViewSet(ClockContextMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Attempts on the server-owned clock: the owner works; admins watch, pause, give time back, end."""

    serializer_class = AttemptSerializer
    permission_classes = EXPERTS_AND_ADMINS

    def get_queryset(self) -> QuerySet[Attempt]:
        if getattr(self, "swagger_fake_view", False):
            return Attempt.objects.none()
        return attempts_visible_to(self.request.user).order_by("-started_at", "-pk")

    def _respond(self, attempt: Attempt, code: int = status.HTTP_200_OK) -> Response:
        # Re-read after the write: the clock needs the pauses as they are now.
        fresh = attempts_visible_to(self.request.user).get(pk=attempt.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        attempt = self.get_object()
        # Past its deadline it shows ended, whether or not a worker has ended it yet.
        services.attempt_end_if_overdue(attempt_id=attempt.pk)
        return self._respond(attempt)

    @extend_schema(
        request=AttemptStartSerializer,
        responses={201: AttemptSerializer, 200: AttemptSerializer},
        description="Start the attempt of a reservation; if it has started already, that attempt (200).",
    )
    def create(self, request: Request) -> Response:
        params = AttemptStartSerializer(data=request.data, context=self.get_serializer_context())
        params.is_valid(raise_exception=True)
        now = timezone.now()
        attempt = services.attempt_start(reservation=params.validated_data["reservation"], by=request.user, now=now)
        started_now = attempt.started_at == now
        return self._respond(attempt, status.HTTP_201_CREATED if started_now else status.HTTP_200_OK)

    @extend_schema(request=AttemptPauseSerializer, responses=AttemptSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        attempt = self.get_object()
        params = AttemptPauseSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        services.attempt_pause(attempt=attempt, by=request.user, **params.validated_data)
        return self._respond(attempt)

    @extend_schema(request=None, responses=AttemptSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        attempt = services.attempt_resume(attempt=self.get_object(), by=request.user)
        return self._respond(attempt)

    @extend_schema(request=None, responses=AttemptSerializer, description="Idempotent: submitting twice is harmless.")
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str) -> Response:
        attempt = services.attempt_submit(attempt=self.get_object(), by=request.user)
        return self._respond(attempt)

    @extend_schema(methods=["GET"], request=None, responses=NoteSerializer(many=True))
    @extend_schema(methods=["POST"], request=NoteCreateSerializer, responses={201: NoteSerializer})
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def notes(self, request: Request, pk: str) -> Response:
        attempt = self.get_object()
        if request.method == "GET":
            notes = attempt.notes.select_related("author")
            return Response(NoteSerializer(notes, many=True).data)
        params = NoteCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        note = services.attempt_add_note(attempt=attempt, by=request.user, body=params.validated_data["body"])
        return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=AttemptAddPauseSerializer,
        responses={201: AttemptSerializer},
        description="Admins: give time back after the fact (an outage, a broken workstation).",
    )
    @action(detail=True, methods=["post"], permission_classes=ADMINS)
    def pauses(self, request: Request, pk: str) -> Response:
        attempt = self.get_object()
        params = AttemptAddPauseSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        services.attempt_add_pause(attempt=attempt, by=request.user, **params.validated_data)
        return self._respond(attempt, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=AttemptSerializer, description="Admins: end the attempt now.")
    @action(detail=True, methods=["post"], permission_classes=ADMINS)
    def end(self, request: Request, pk: str) -> Response:
        attempt = services.attempt_end_by_admin(attempt=self.get_object(), by=request.user)
        return self._respond(attempt)


class WorkstationViewSet(ClockContextMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Admins register workstations, edit them, and drain or reactivate them."""

    serializer_class = WorkstationSerializer
    permission_classes = ADMINS
    queryset = Workstation.objects.order_by("name")

    @extend_schema(request=WorkstationCreateSerializer, responses={201: WorkstationSerializer})
    def create(self, request: Request) -> Response:
        params = WorkstationCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        workstation = services.workstation_register(**params.validated_data)
        return Response(self.get_serializer(workstation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=WorkstationUpdateSerializer, responses=WorkstationSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        workstation = self.get_object()
        params = WorkstationUpdateSerializer(workstation, data=request.data, partial=True)
        params.is_valid(raise_exception=True)
        workstation = services.workstation_update(workstation=workstation, **params.validated_data)
        return Response(self.get_serializer(workstation).data)

    @extend_schema(request=None, responses=WorkstationSerializer, description="No new bookings; running work goes on.")
    @action(detail=True, methods=["post"])
    def drain(self, request: Request, pk: str) -> Response:
        workstation = services.workstation_set_status(workstation=self.get_object(), status=Workstation.Status.DRAINING)
        return Response(self.get_serializer(workstation).data)
