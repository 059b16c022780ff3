"""What every trials API module shares: who may call, the querysets a user may see, one `now` per request."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request

from rebench_site import roles
from trials import selectors
from trials.models import Attempt, Reservation

User = get_user_model()
AnyUser = AbstractBaseUser | AnonymousUser

EXPERTS_AND_ADMINS = [IsAuthenticated, roles.HasRole.of(roles.EXPERT, roles.ADMIN)]
ADMINS = [IsAuthenticated, roles.HasRole.of(roles.ADMIN)]


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


class ClockContextMixin:
    """One `now` per request, so every object in a response is judged at the same moment."""

    request: Request

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()  # type: ignore[misc]
        if not hasattr(self, "_now"):
            self._now = timezone.now()
        context["now"] = self._now
        return context
