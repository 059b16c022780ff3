"""The workstations endpoint, for admins: register, edit, drain."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from rebench_site.roles import AuthenticatedRequest
from trials import services
from trials.api._shared import ADMINS, ClockContextMixin
from trials.api.serializers import WorkstationCreateSerializer, WorkstationSerializer, WorkstationUpdateSerializer
from trials.models import Workstation


class WorkstationViewSet(
    ClockContextMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Workstation]
):
    """Admins register workstations, edit them, and drain or reactivate them."""

    serializer_class = WorkstationSerializer
    permission_classes = ADMINS
    queryset = Workstation.objects.order_by("name")

    @extend_schema(request=WorkstationCreateSerializer, responses={201: WorkstationSerializer})
    def create(self, request: AuthenticatedRequest) -> Response:
        params = WorkstationCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        workstation = services.workstation_register(**params.validated_data)
        return Response(self.get_serializer(workstation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=WorkstationUpdateSerializer, responses=WorkstationSerializer)
    def partial_update(self, request: AuthenticatedRequest, pk: str) -> Response:
        workstation = self.get_object()
        params = WorkstationUpdateSerializer(workstation, data=request.data, partial=True)
        params.is_valid(raise_exception=True)
        workstation = services.workstation_update(workstation=workstation, **params.validated_data)
        return Response(self.get_serializer(workstation).data)

    @extend_schema(request=None, responses=WorkstationSerializer, description="No new bookings; running work goes on.")
    @action(detail=True, methods=["post"])
    def drain(self, request: AuthenticatedRequest, pk: str) -> Response:
        workstation = services.workstation_set_status(workstation=self.get_object(), status=Workstation.Status.DRAINING)
        return Response(self.get_serializer(workstation).data)
