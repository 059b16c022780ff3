"""The reservations endpoint: booked slots, listed, booked and cancelled."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from rebench_site import roles
from rebench_site.roles import AuthenticatedRequest
from trials import services
from trials.api._shared import EXPERTS_AND_ADMINS, ClockContextMixin, reservations_visible_to
from trials.api.serializers import ReservationCreateSerializer, ReservationFilterSerializer, ReservationSerializer
from trials.models import Reservation


class ReservationViewSet(
    ClockContextMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Reservation]
):
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
    def create(self, request: AuthenticatedRequest) -> Response:
        params = ReservationCreateSerializer(data=request.data, context=self.get_serializer_context())
        params.is_valid(raise_exception=True)
        data = params.validated_data
        reservation = services.reservation_create(
            expert=data.get("expert", request.user),
            environment=data["environment"],
            workstation=data["workstation"],
            starts_at=data["starts_at"],
            ends_at=data.get("ends_at"),
            gpu_count=data.get("gpu_count"),
            created_by=request.user,
        )
        return self._respond(reservation, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ReservationSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: AuthenticatedRequest, pk: str) -> Response:
        reservation = services.reservation_cancel(reservation=self.get_object(), by=request.user)
        return self._respond(reservation)
