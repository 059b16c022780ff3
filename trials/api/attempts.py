"""The attempts endpoint: start, pause, resume, submit, notes, and (for admins) pauses after the fact and ending."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from rebench_site.roles import AuthenticatedRequest
from trials import services
from trials.api._shared import ADMINS, EXPERTS_AND_ADMINS, ClockContextMixin, attempts_visible_to
from trials.api.serializers import (
    AttemptAddPauseSerializer,
    AttemptPauseSerializer,
    AttemptSerializer,
    AttemptStartSerializer,
    NoteCreateSerializer,
    NoteSerializer,
)
from trials.api.ssh_keys import AttemptSSHKeySerializer
from trials.models import Attempt


class AttemptViewSet(
    ClockContextMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Attempt]
):
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
    def create(self, request: AuthenticatedRequest) -> Response:
        params = AttemptStartSerializer(data=request.data, context=self.get_serializer_context())
        params.is_valid(raise_exception=True)
        now = timezone.now()
        attempt = services.attempt_start(reservation=params.validated_data["reservation"], by=request.user, now=now)
        started_now = attempt.started_at == now
        return self._respond(attempt, status.HTTP_201_CREATED if started_now else status.HTTP_200_OK)

    @extend_schema(request=AttemptPauseSerializer, responses=AttemptSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request: AuthenticatedRequest, pk: str) -> Response:
        attempt = self.get_object()
        params = AttemptPauseSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        services.attempt_pause(attempt=attempt, by=request.user, **params.validated_data)
        return self._respond(attempt)

    @extend_schema(request=None, responses=AttemptSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request: AuthenticatedRequest, pk: str) -> Response:
        attempt = services.attempt_resume(attempt=self.get_object(), by=request.user)
        return self._respond(attempt)

    @extend_schema(
        request=None,
        responses=AttemptSerializer,
        description="After a failed preparation (`preparing` is failed): prepare the environment again. The clock "
        "starts when it is ready; the failure cost no time.",
    )
    @action(detail=True, methods=["post"], url_path="prepare-again")
    def prepare_again(self, request: AuthenticatedRequest, pk: str) -> Response:
        attempt = services.attempt_preparation_retry(attempt=self.get_object(), by=request.user)
        return self._respond(attempt)

    @extend_schema(request=None, responses=AttemptSerializer, description="Idempotent: submitting twice is harmless.")
    @action(detail=True, methods=["post"])
    def submit(self, request: AuthenticatedRequest, pk: str) -> Response:
        attempt = services.attempt_submit(attempt=self.get_object(), by=request.user)
        return self._respond(attempt)

    @extend_schema(methods=["GET"], request=None, responses=NoteSerializer(many=True))
    @extend_schema(methods=["POST"], request=NoteCreateSerializer, responses={201: NoteSerializer})
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def notes(self, request: AuthenticatedRequest, pk: str) -> Response:
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
    def pauses(self, request: AuthenticatedRequest, pk: str) -> Response:
        attempt = self.get_object()
        params = AttemptAddPauseSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        services.attempt_add_pause(attempt=attempt, by=request.user, **params.validated_data)
        return self._respond(attempt, status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={201: AttemptSSHKeySerializer},
        description="The attempt's expert: a new key pair that opens this attempt only over SSH, while it runs. The"
        " private key is in this answer only; the site keeps the public half.",
    )
    @action(detail=True, methods=["post"], url_path="ssh-key")
    def ssh_key(self, request: AuthenticatedRequest, pk: str) -> Response:
        key, private = services.ssh_key_create_for_attempt(attempt=self.get_object(), by=request.user)
        body = AttemptSSHKeySerializer({"key": key, "private_key": private}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=AttemptSerializer, description="Admins: end the attempt now.")
    @action(detail=True, methods=["post"], permission_classes=ADMINS)
    def end(self, request: AuthenticatedRequest, pk: str) -> Response:
        attempt = services.attempt_end_by_admin(attempt=self.get_object(), by=request.user)
        return self._respond(attempt)
