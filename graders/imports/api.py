"""REST API for agent harnesses (runs, their score logs, finishing) and for admins' run imports."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from graders.imports import selectors, services
from graders.imports.models import RunImport
from graders.models import AttemptScore, ScoreLogEntry
from rebench_site import roles
from rebench_site.api_fields import FiniteFloatField
from rebench_site.errors import NotAllowed
from rebench_site.roles import AuthenticatedRequest
from trials.models import Attempt

HarnessOrAdmin = roles.HasRole.of(roles.HARNESS, roles.ADMIN)
AdminOnly = roles.HasRole.of(roles.ADMIN)
# Nothing RE-Bench compares with ran before this; a year before it is a typo or a hostile client.
EARLIEST_RUN_YEAR = 2000
# Room for the multipart envelope around the file itself.
ENVELOPE_BYTES = 64 * 1024


class RunCreateSerializer(serializers.Serializer[None]):
    run_id = serializers.CharField(
        max_length=255, help_text="Your harness's id of the run; sending it again updates the run."
    )
    environment = serializers.CharField(max_length=120, help_text="Environment slug, e.g. ai_rd_triton_cumsum.")
    agent_name = serializers.CharField(max_length=200)
    agent_model = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    agent_scaffold = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    configuration = serializers.SlugField(
        max_length=60,
        required=False,
        default="full",
        help_text="The scale the run's raw scores were measured at: full (RE-Bench's tasks, the default), small, "
        "or a custom configuration's name. Its scores are normalised with that configuration's constants.",
    )
    time_limit_seconds = FiniteFloatField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=settings.RUN_MAX_SECONDS,
        help_text="The run's length; the environment's limit if left out.",
    )
    started_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When the run started (with its time zone); at most RUN_MAX_START_AHEAD_SECONDS ahead of now.",
    )

    def validate_started_at(self, value: Any) -> Any:
        # DRF would read a naive time in the server's zone; a harness elsewhere means its own, so ask.
        raw = self.initial_data.get("started_at")
        parsed = parse_datetime(raw) if isinstance(raw, str) else None
        if parsed is not None and timezone.is_naive(parsed):
            raise serializers.ValidationError("Give the time zone too (e.g. +00:00).")
        if value is not None:
            # A run's clock, deadline and leaderboard times are computed from its start: one far in
            # the future (or before any run could have been) is a harness's mistake, not a run.
            ahead = timedelta(seconds=settings.RUN_MAX_START_AHEAD_SECONDS)
            if value > timezone.now() + ahead:
                raise serializers.ValidationError(f"is more than {ahead} ahead of this server's clock.")
            if value.year < EARLIEST_RUN_YEAR:
                raise serializers.ValidationError(f"is before {EARLIEST_RUN_YEAR}.")
        return value


class EntryCreateSerializer(serializers.Serializer[None]):
    elapsed_seconds = FiniteFloatField(
        min_value=0,
        max_value=settings.RUN_MAX_SECONDS,
        help_text="Working time of the run when it was scored (0 … run length).",
    )
    # NaN (null, or a NaN literal) is an invalid result; an infinity fails the bounds.
    score = serializers.FloatField(
        allow_null=True,
        min_value=-1e300,
        max_value=1e300,
        help_text="The raw score; null for an invalid result (NaN).",
    )
    message = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
    details = serializers.DictField(required=False, default=dict)


class FinalScoreSerializer(serializers.Serializer[AttemptScore]):
    raw = serializers.FloatField(allow_null=True)
    normalised = serializers.FloatField(allow_null=True)
    valid_entries = serializers.IntegerField()
    is_final = serializers.BooleanField()


class RunSerializer(serializers.Serializer[Attempt]):
    id = serializers.IntegerField()
    run_id = serializers.CharField(source="external_id")
    environment = serializers.CharField(source="environment.slug")
    configuration = serializers.SerializerMethodField()
    agent_name = serializers.CharField()
    agent_model = serializers.CharField()
    agent_scaffold = serializers.CharField()
    time_limit_seconds = serializers.SerializerMethodField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    final_score = serializers.SerializerMethodField()

    def get_configuration(self, attempt: Attempt) -> str:
        """The configuration's name and version, e.g. `full v1`."""
        return attempt.configuration.label if attempt.configuration is not None else ""

    def get_time_limit_seconds(self, attempt: Attempt) -> float:
        return attempt.time_limit.total_seconds()

    @extend_schema(request=None, responses=FinalScoreSerializer(allow_null=True))
    def get_final_score(self, attempt: Attempt) -> dict[str, Any] | None:
        try:
            score = attempt.final_score  # select_related by the callers: no query per run in a list
        except AttemptScore.DoesNotExist:
            return None
        return FinalScoreSerializer(score).data


class EntrySerializer(serializers.Serializer[ScoreLogEntry]):
    id = serializers.IntegerField()
    scored_at = serializers.DateTimeField()
    elapsed_seconds = serializers.FloatField()
    score = serializers.FloatField(allow_null=True)
    valid = serializers.BooleanField(source="is_valid")
    message = serializers.CharField()
    details = serializers.DictField()


def _run(request: AuthenticatedRequest, pk: int) -> Attempt:
    """Any API run by id: another harness's run is then refused (403) by the service, as the API promises."""
    return get_object_or_404(
        Attempt.objects.select_related("environment", "configuration", "final_score"), pk=pk, source=Attempt.Source.API
    )


def _readable(request: AuthenticatedRequest, attempt: Attempt) -> Attempt:
    if not roles.is_admin(request.user) and attempt.submitted_by_id != request.user.pk:
        raise NotAllowed("Another harness created that run.")
    return attempt


class RunListView(APIView):
    permission_classes = [IsAuthenticated, HarnessOrAdmin]

    @extend_schema(responses=RunSerializer(many=True))
    def get(self, request: AuthenticatedRequest) -> Response:
        """The runs this harness created (every API run for an admin), newest first, at most 500."""
        runs = selectors.api_runs_visible_to(request.user).order_by("-started_at", "-pk")[:500]
        return Response(RunSerializer(runs, many=True).data)  # type: ignore[arg-type]  # many=True: the stubs expect one instance

    @extend_schema(
        request=RunCreateSerializer,
        responses={
            201: RunSerializer,
            200: OpenApiResponse(RunSerializer, description="The run existed (same run_id): updated."),
            400: OpenApiResponse(description="Bad input: the body names the field."),
            403: OpenApiResponse(description="Another harness created a run with that run_id."),
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        """Create an agent run, idempotent on `run_id`: the same run sent twice is one run, updated."""
        params = RunCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        attempt, created = services.agent_run_create(by=request.user, **params.validated_data)
        return Response(RunSerializer(attempt).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class RunDetailView(APIView):
    permission_classes = [IsAuthenticated, HarnessOrAdmin]

    @extend_schema(responses={200: RunSerializer, 403: OpenApiResponse(description="Another harness's run.")})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        return Response(RunSerializer(_readable(request, _run(request, pk))).data)


class RunScoreLogView(APIView):
    permission_classes = [IsAuthenticated, HarnessOrAdmin]

    @extend_schema(
        responses={200: EntrySerializer(many=True), 403: OpenApiResponse(description="Another harness's run.")}
    )
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        attempt = _readable(request, _run(request, pk))
        entries = ScoreLogEntry.objects.filter(attempt=attempt).order_by("scored_at", "pk")
        return Response(EntrySerializer(entries, many=True).data)  # type: ignore[arg-type]  # many=True: the stubs expect one instance

    @extend_schema(
        request=EntryCreateSerializer,
        responses={
            201: EntrySerializer,
            400: OpenApiResponse(
                description="Bad input, naming the field: score not a number, elapsed negative or beyond the run "
                "length, or the run is finished (`run`)."
            ),
            403: OpenApiResponse(description="Another harness's run."),
        },
    )
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        """Add a score-log entry; the run's final score (the environment's aggregate) is recomputed."""
        attempt = _run(request, pk)
        params = EntryCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        entry = services.agent_run_log_score(attempt=attempt, by=request.user, **params.validated_data)
        return Response(EntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class RunFinishView(APIView):
    permission_classes = [IsAuthenticated, HarnessOrAdmin]

    @extend_schema(
        request=None, responses={200: RunSerializer, 403: OpenApiResponse(description="Another harness's run.")}
    )
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        """End the run; its score becomes final. Finishing a finished run changes nothing."""
        attempt = services.agent_run_finish(attempt=_run(request, pk), by=request.user)
        return Response(RunSerializer(attempt).data)


class RunImportSerializer(serializers.ModelSerializer[RunImport]):
    # Plain strings in the schema: DRF's enums of these would collide with other apps' `status` and `kind` names.
    kind = serializers.CharField(read_only=True, help_text="auto, inspect, metr_runs or file")
    detected_kind = serializers.CharField(read_only=True, help_text="The format read: inspect, metr_runs or file.")
    status = serializers.CharField(read_only=True, help_text="queued, validating, writing, done or failed")

    class Meta:
        model = RunImport
        fields = [
            "id",
            "original_name",
            "size_bytes",
            "kind",
            "configuration",
            "detected_kind",
            "status",
            "total",
            "processed",
            "runs_created",
            "runs_updated",
            "entries_written",
            "error",
            "error_line",
            "error_field",
            "created_at",
            "started_at",
            "finished_at",
        ]


class RunImportListView(APIView):
    permission_classes = [IsAuthenticated, AdminOnly]
    parser_classes = [MultiPartParser]

    @extend_schema(responses=RunImportSerializer(many=True))
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response(RunImportSerializer(selectors.run_imports_recent(), many=True).data)

    @extend_schema(
        request=inline_serializer(
            "RunImportUpload",
            {
                "file": serializers.FileField(),
                "kind": serializers.ChoiceField(choices=RunImport.Kind.choices, required=False),
                "configuration": serializers.SlugField(
                    required=False,
                    default="full",
                    help_text="The scale of rows that don't name one: full (the default), small or a custom name.",
                ),
            },
        ),
        responses={202: RunImportSerializer, 400: OpenApiResponse(description="Too large, empty or unknown format.")},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        """Upload a file of runs; the import runs as a Celery job: poll the import for its progress."""
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.RUN_IMPORT_MAX_BYTES + ENVELOPE_BYTES:
            services.refuse_if_too_large(declared)  # from the declared length, before the body is read
        upload = request.FILES.get("file")
        if upload is None:
            return Response({"file": ["Attach the file of runs."]}, status=status.HTTP_400_BAD_REQUEST)
        run_import = services.run_import_create(
            upload=upload,
            name=upload.name,
            size=upload.size,
            kind=request.data.get("kind") or "auto",
            configuration=request.data.get("configuration") or "full",
            by=request.user,
        )
        return Response(RunImportSerializer(run_import).data, status=status.HTTP_202_ACCEPTED)


class RunImportDetailView(APIView):
    permission_classes = [IsAuthenticated, AdminOnly]

    @extend_schema(responses=RunImportSerializer)
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        return Response(RunImportSerializer(get_object_or_404(RunImport, pk=pk)).data)
