"""The SSH keys endpoint: an expert's public keys (list, add, remove); an attempt's own key is on /attempts/."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from rebench_site import roles
from rebench_site.roles import AuthenticatedRequest
from trials import services
from trials.models import SSHKey

EXPERTS: list[type[BasePermission]] = [IsAuthenticated, roles.HasRole.of(roles.EXPERT)]


class SSHKeySerializer(serializers.ModelSerializer[SSHKey]):
    class Meta:
        model = SSHKey
        fields = ["id", "name", "public_key", "fingerprint", "attempt", "created_at"]
        read_only_fields = fields


class SSHKeyCreateSerializer(serializers.Serializer[dict[str, str]]):
    name = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    public_key = serializers.CharField(max_length=16 * 1024, trim_whitespace=True)


class AttemptSSHKeySerializer(serializers.Serializer[dict[str, object]]):
    key = SSHKeySerializer()
    private_key = serializers.CharField(help_text="OpenSSH format; shown once, never stored.")


class SSHKeyViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet[SSHKey]
):
    """The caller's SSH keys: each opens their running attempts' sandboxes over SSH."""

    serializer_class = SSHKeySerializer
    permission_classes = EXPERTS

    def get_queryset(self) -> QuerySet[SSHKey]:
        if getattr(self, "swagger_fake_view", False):
            return SSHKey.objects.none()
        return SSHKey.objects.filter(user__pk=self.request.user.pk or 0).order_by("pk")

    @extend_schema(request=SSHKeyCreateSerializer, responses={201: SSHKeySerializer})
    def create(self, request: AuthenticatedRequest) -> Response:
        params = SSHKeyCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        key = services.ssh_key_add(user=request.user, **params.validated_data)
        return Response(SSHKeySerializer(key).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: AuthenticatedRequest, *args: object, **kwargs: object) -> Response:  # type: ignore[override]  # the permissions refuse anonymous users
        services.ssh_key_delete(key=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
