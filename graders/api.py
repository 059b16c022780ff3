"""REST API for grading: queue a scoring run, follow its job, read the score log and the instructions."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from environments import packages
from graders import selectors, services
from graders.models import AttemptScore, ScoreLogEntry, ScoringJob
from graders.services import model_calls
from rebench_site.roles import AuthenticatedRequest
from trials.models import Attempt
from trials.selectors import attempts_visible_to


class ScoreLogEntrySerializer(serializers.Serializer[dict[str, Any]]):
    """For the schema only: entries are built by selectors.entry_as_dict (hidden scores are null)."""

    id = serializers.IntegerField()
    scored_at = serializers.DateTimeField()
    elapsed_seconds = serializers.FloatField()
    valid = serializers.BooleanField()
    score = serializers.FloatField(allow_null=True)
    normalised_score = serializers.FloatField(allow_null=True)
    message = serializers.CharField()
    details = serializers.DictField()


def visible_attempt(request: AuthenticatedRequest, pk: int) -> Attempt:
    """The owner's or an admin's; 404 for anyone else, so ids don't leak."""
    return get_object_or_404(attempts_visible_to(request.user).select_related("environment", "workstation"), pk=pk)


class AttemptScoreView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None,
        responses={
            202: inline_serializer("ScoreQueued", {"job": serializers.UUIDField(), "status": serializers.CharField()})
        },
    )
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        """Queue a scoring run on the attempt's workstation (an unfinished one is returned instead)."""
        job = services.scoring_job_request(attempt=visible_attempt(request, pk), by=request.user)
        return Response({"job": str(job.pk), "status": job.status}, status=status.HTTP_202_ACCEPTED)


class ScoreJobView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={
            200: inline_serializer(
                "ScoreJob",
                {
                    "job": serializers.UUIDField(),
                    "status": serializers.CharField(help_text="queued, running, done or failed"),
                    "entry": ScoreLogEntrySerializer(allow_null=True),
                },
            ),
            404: OpenApiResponse(description="No such job on this attempt."),
        }
    )
    def get(self, request: AuthenticatedRequest, pk: int, job_id: str) -> Response:
        attempt = visible_attempt(request, pk)
        try:
            job = ScoringJob.objects.filter(attempt=attempt, pk=job_id).first()
        except Exception as exc:  # a malformed UUID
            raise Http404("No such job.") from exc
        if job is None:
            raise Http404("No such job.")
        entry = ScoreLogEntry.objects.select_related("attempt__environment").filter(job=job).first()
        visible = selectors.scores_visible_to(attempt, request.user)
        return Response(
            {
                "job": str(job.pk),
                "status": job.status,
                "entry": selectors.entry_as_dict(entry, visible=visible) if entry else None,
            }
        )


class ScoreLogView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={
            200: inline_serializer(
                "ScoreLog",
                {
                    "scores_visible": serializers.BooleanField(),
                    "final_score": serializers.FloatField(allow_null=True),
                    "final_normalised_score": serializers.FloatField(allow_null=True),
                    "entries": ScoreLogEntrySerializer(many=True),
                },
            )
        }
    )
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        attempt = visible_attempt(request, pk)
        visible = selectors.scores_visible_to(attempt, request.user)
        entries = ScoreLogEntry.objects.filter(attempt=attempt).select_related("attempt__environment")
        final = AttemptScore.objects.filter(attempt=attempt).first()
        return Response(
            {
                "scores_visible": visible,
                "final_score": final.raw if final and visible else None,
                "final_normalised_score": final.normalised if final and visible else None,
                "entries": [selectors.entry_as_dict(e, visible=visible) for e in entries],
            }
        )


class InstructionsView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={
            200: inline_serializer(
                "Instructions", {"environment": serializers.CharField(), "instructions": serializers.CharField()}
            )
        }
    )
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        """The environment's instructions as Markdown (what `task instructions` prints)."""
        attempt = visible_attempt(request, pk)
        package = packages.find(attempt.environment.slug)
        text = package.instructions if package else ""
        return Response(
            {"environment": attempt.environment.slug, "instructions": text or attempt.environment.description}
        )


__all__ = ["AttemptScoreView", "InstructionsView", "ScoreJobView", "ScoreLogView", "services"]


class ExpertModelView(APIView):
    """The environment's model, OpenAI-compatible, for the expert's shell (graders.services.model_calls)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=inline_serializer("ChatCompletionRequest", {"messages": serializers.ListField()}),
        responses={
            200: OpenApiResponse(description="The model's chat completion, as the endpoint answered it."),
            400: OpenApiResponse(description="The request is not a chat completion this endpoint forwards."),
            404: OpenApiResponse(description="No such attempt of yours, or its environment offers no model."),
            409: OpenApiResponse(description="The attempt is paused or has ended."),
            429: OpenApiResponse(description="The attempt's model budget can't pay for this request."),
            502: OpenApiResponse(description="The model's endpoint failed."),
            503: OpenApiResponse(description="The environment's configuration is incomplete."),
        },
    )
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        """One chat completion from the environment's model, charged to the attempt's budget."""
        attempt = visible_attempt(request, pk)
        if attempt.user_id != request.user.pk:
            raise Http404  # an admin doesn't spend an expert's budget
        status_code, payload = model_calls.model_call_forward(attempt=attempt, body=request.data)
        return Response(payload, status=status_code)
