"""What every trials API module shares: who may call, the querysets a user may see, one `now` per request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.utils import timezone
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission, IsAuthenticated

from rebench_site import roles
from rebench_site.roles import AnyUser
from trials import selectors
from trials.models import Attempt, Reservation

# Both refuse anonymous users: the views behind them take a roles.AuthenticatedRequest.
EXPERTS_AND_ADMINS: list[type[BasePermission]] = [IsAuthenticated, roles.HasRole.of(roles.EXPERT, roles.ADMIN)]
ADMINS: list[type[BasePermission]] = [IsAuthenticated, roles.HasRole.of(roles.ADMIN)]


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


# --- views -------------------------------------------------------------------------------------


if TYPE_CHECKING:
    _GenericView = GenericAPIView[Any]  # what the mixin below is mixed into
else:
    _GenericView = object


class ClockContextMixin(_GenericView):
    """One `now` per request, so every object in a response is judged at the same moment."""

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if not hasattr(self, "_now"):
            self._now = timezone.now()
        context["now"] = self._now
        return context
