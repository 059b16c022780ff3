"""REST API for environments: a read-only catalogue for every role."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import serializers, viewsets
from rest_framework.permissions import IsAuthenticated

from environments.models import Environment
from rebench_site import roles


class EnvironmentSerializer(serializers.ModelSerializer[Environment]):
    time_limit_seconds = serializers.SerializerMethodField()

    class Meta:
        model = Environment
        fields = [
            "slug",
            "title",
            "description",
            "raw_score",
            "direction",
            "aggregation",
            "starting_score",
            "reference_score",
            "gpus_min",
            "gpus_max",
            "gpu_model",
            "time_limit_seconds",
            "scores_visible",
            "is_active",
        ]
        read_only_fields = fields

    def get_time_limit_seconds(self, environment: Environment) -> float:
        return environment.time_limit.total_seconds()


class EnvironmentViewSet(viewsets.ReadOnlyModelViewSet[Environment]):
    """Environments by slug. Admins also see the ones closed for booking."""

    serializer_class = EnvironmentSerializer
    permission_classes = [IsAuthenticated, roles.HasRole.of(*roles.ROLES)]
    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"

    def get_queryset(self) -> QuerySet[Environment]:
        queryset = Environment.objects.order_by("slug")
        if getattr(self, "swagger_fake_view", False) or roles.is_admin(self.request.user):
            return queryset
        return queryset.filter(is_active=True)
